"""A real Prometheus for the tests: Debian's `prometheus` package, installed here when missing
(as root: `apt-get update`, then `apt-get install --no-install-recommends prometheus`; the
package's own system service is never used), and run by the test itself on a free port with its
own configuration file and data directory.

    binary = prometheus_binary()                         # installs the package once if needed
    with PrometheusServer(binary, workdir, config_yaml) as prom:
        prom.targets()                                   # GET /api/v1/targets, activeTargets
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port

PACKAGE = "prometheus"
INSTALL_LOG = Path("/tmp/kuma-test-apt-prometheus.log")


def _apt(*args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with INSTALL_LOG.open("ab") as log:
        subprocess.run(
            ["apt-get", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=900,
        )


def prometheus_binary() -> str:
    """The `prometheus` executable, installing Debian's package first when it is missing."""
    found = shutil.which(PACKAGE)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            "the Prometheus tests need Debian's prometheus package: "
            "apt-get update && apt-get install -y --no-install-recommends prometheus"
        )
    try:
        _apt("update", "-q")
        _apt("install", "-y", "-q", "--no-install-recommends", PACKAGE)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = INSTALL_LOG.read_text(errors="replace")[-3000:]
        pytest.fail(f"installing {PACKAGE} failed ({exc}); {INSTALL_LOG}:\n{tail}")
    found = shutil.which(PACKAGE)
    if not found:
        pytest.fail(f"{PACKAGE} was installed but is not on PATH; see {INSTALL_LOG}")
    return found


class PrometheusServer:
    """One Prometheus process on 127.0.0.1:<free port>, with `config` (YAML text) and a data
    directory under `workdir`."""

    def __init__(self, binary: str, workdir: Path, config: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(config)
        self.data_dir = workdir / "prometheus-data"
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.data_dir}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=info",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"prometheus exited with {self.proc.returncode}:\n{self.logs()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready within 30 s:\n{self.logs()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}", timeout=5) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def targets(self) -> list[dict[str, Any]]:
        """The active targets (`/api/v1/targets`): labels, discoveredLabels, health, scrapeUrl."""
        return list(self.api("targets?state=active")["activeTargets"])

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
