"""The compose topology as real processes on loopback addresses, with the fixed ports:
API 127.0.0.2:5681/5680, xDS replicas 127.0.0.3:5678 and 127.0.0.4:5678, bootstrap
127.0.0.5:5682, over the machine's Postgres (a fresh database) and Redis (a channel of this run).
Every process's output is kept; `logs()` prints them on failure; `stop()` tears all down."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
API_HOST, XDS_HOSTS, BOOTSTRAP_HOST = "127.0.0.2", ("127.0.0.3", "127.0.0.4"), "127.0.0.5"
API = f"http://{API_HOST}:5681"
BOOTSTRAP = f"http://{BOOTSTRAP_HOST}:5682"


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as exc:  # noqa: BLE001 (report the last failure)
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


class Topology:
    def __init__(self, workdir: Path, pg: Mapping[str, str], redis_channel: str, amqp_uri: str):
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        base = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        self.env = {
            **base,
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_POSTGRES_HOST": pg["host"],
            "KUMA_STORE_POSTGRES_PORT": pg["port"],
            "KUMA_STORE_POSTGRES_USER": pg["user"],
            "KUMA_STORE_POSTGRES_PASSWORD": "unused-with-trust-auth",
            "KUMA_STORE_POSTGRES_DB_NAME": pg["dbname"],
            "KUMA_CHANGE_FEED_TYPE": "redis",
            "KUMA_CHANGE_FEED_REDIS_CHANNEL": redis_channel,
            "KUMA_CHANGE_FEED_REVISION_POLL_INTERVAL": "1s",
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST": ",".join(XDS_HOSTS),
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": "5678",
            "KUMA_WORKER_AMQP_URI": amqp_uri,
            "KUMA_WORKER_HEALTH_FILE": str(workdir / "worker.health"),
        }

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # gunicorn's workers go down with their master
        )
        self.procs[name] = proc
        return proc

    def start_control_plane(self) -> None:
        migrate = subprocess.run(
            [str(BIN / "kuma-cp"), "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrate.returncode == 0, migrate.stderr
        self.start(
            "api", [str(BIN / "kuma-api"), "--workers", "2"], KUMA_API_SERVER_ADDRESS=API_HOST
        )
        for i, host in enumerate(XDS_HOSTS):
            self.start(f"xds-{i + 1}", [str(BIN / "kuma-xds")], KUMA_XDS_SERVER_ADDRESS=host)
        self.start(
            "bootstrap",
            [str(BIN / "kuma-bootstrap"), "--workers", "1", "--bind", f"{BOOTSTRAP_HOST}:5682"],
        )
        self.start("worker", [str(BIN / "kuma-worker")], PYTHONWARNINGS="ignore")
        wait_until(
            lambda: requests.get(f"http://{API_HOST}:5680/ready", timeout=1).ok, 30, "API ready"
        )
        wait_until(
            lambda: (
                requests.post(f"{BOOTSTRAP}/bootstrap", data=b"x", timeout=1).status_code == 400
            ),
            30,
            "bootstrap up",
        )
        for host in XDS_HOSTS:
            wait_until(lambda h=host: _listening(h, 5678), 30, f"xDS on {host}")
            wait_until(
                lambda h=host: requests.get(f"http://{h}:5680/ready", timeout=1).ok,
                30,
                f"xDS diagnostics on {host}",
            )
        wait_until((self.workdir / "worker.health").exists, 60, "the worker's health file")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, sig)
        proc.wait(15)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(10)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.workdir / f'{name}.log').read_text(errors='replace')[-4000:]}"
            for name in self.procs
        )


def _listening(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0
