"""Real processes: gunicorn API replicas sharing one Postgres, four replicas starting at once,
and the all-in-one `kuma-cp run`. Every process is killed in teardown, whatever happens."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from tests.api.conftest import pg_env
from tests.conftest import fresh_database as shared_fresh_database
from tests.ports import cp_ports, free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path
    api_url: str
    diag_url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Processes:
    def __init__(self, tmp: Path, base_env: Mapping[str, str]):
        self.tmp = tmp
        self.base_env = dict(base_env)
        self.started: list[Proc] = []

    def start(self, argv: list[str], env: Mapping[str, str], host: str = "127.0.0.1") -> Proc:
        api_port, diag_port = free_port(host), free_port(host)
        full_env = {
            **self.base_env,
            **cp_ports(host),
            **env,
            "KUMA_API_SERVER_ADDRESS": host,
            "KUMA_API_SERVER_PORT": str(api_port),
            "KUMA_XDS_SERVER_DIAGNOSTICS_PORT": str(diag_port),
        }
        log = self.tmp / f"proc-{len(self.started)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                env=full_env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(popen, log, f"http://{host}:{api_port}", f"http://{host}:{diag_port}")
        self.started.append(proc)
        return proc

    def wait_ready(self, proc: Proc, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                pytest.fail(f"process exited with {proc.popen.returncode}:\n{proc.output()}")
            try:
                if requests.get(proc.diag_url + "/ready", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # busy replicas may answer slowly
                pass
            time.sleep(0.1)
        pytest.fail(f"process not ready after {timeout}s:\n{proc.output()}")

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
            # the process group: gunicorn workers too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            if proc.popen.poll() is None:
                proc.popen.wait(timeout=5)


@pytest.fixture()
def processes(tmp_path: Path, kuma_env: dict[str, str]) -> Iterator[Processes]:
    procs = Processes(tmp_path, kuma_env)
    try:
        yield procs
    finally:
        procs.kill_all()


def kuma_api(workers: int = 1) -> list[str]:
    return [str(BIN / "kuma-api"), "--workers", str(workers)]


@pytest.fixture()
def fresh_database() -> Iterator[dict[str, str]]:
    """An empty, unmigrated database of its own (the start-up race needs a clean slate)."""
    with shared_fresh_database(f"kuma_test_race_{uuid.uuid4().hex[:10]}") as params:
        yield params


def test_two_gunicorn_replicas_see_each_others_writes(
    processes: Processes, migrated_pg: dict[str, str]
):
    env = pg_env(migrated_pg)
    a = processes.start(kuma_api(workers=2), env, host="127.0.0.2")
    b = processes.start(kuma_api(workers=2), env, host="127.0.0.3")
    processes.wait_ready(a)
    processes.wait_ready(b)
    mesh = f"shared-{uuid.uuid4().hex[:6]}"
    for i in range(5):
        name = f"{mesh}-{i}"
        # writes from 127.0.0.x are loopback: no token needed
        assert (
            requests.put(
                f"{a.api_url}/meshes/{name}", json={"type": "Mesh", "name": name}, timeout=5
            ).status_code
            == 201
        )
        assert requests.get(f"{b.api_url}/meshes/{name}", timeout=5).status_code == 200
        assert requests.delete(f"{b.api_url}/meshes/{name}", timeout=5).status_code == 200
        assert requests.get(f"{a.api_url}/meshes/{name}", timeout=5).status_code == 404
    assert requests.get(f"{a.api_url}/", timeout=5).json()["tagline"] == "Kuma"


@pytest.mark.postgres
def test_four_replicas_starting_at_once_make_one_default_mesh(
    processes: Processes, fresh_database: dict[str, str]
):
    env = {**pg_env(fresh_database), "KUMA_STORE_MIGRATE_ON_START": "true"}
    started = [processes.start(kuma_api(workers=2), env) for _ in range(4)]
    for proc in started:
        processes.wait_ready(proc)
    dsn = " ".join(f"{k}={v}" for k, v in fresh_database.items())
    with psycopg.connect(dsn) as conn:
        meshes = conn.execute("SELECT mesh, name FROM resources WHERE type = 'Mesh'").fetchall()
        tokens = conn.execute("SELECT count(*) FROM secrets WHERE name = 'admin-token'").fetchone()
    assert meshes == [("default", "default")]
    assert tokens == (1,)
    for proc in started:
        assert proc.popen.poll() is None
        text = proc.output()
        assert "Traceback" not in text and "[ERROR]" not in text, text


def test_kuma_cp_run_serves_and_stops_on_sigterm(processes: Processes):
    proc = processes.start([str(BIN / "kuma-cp"), "run"], {})
    processes.wait_ready(proc)
    assert requests.get(proc.api_url + "/", timeout=5).json()["tagline"] == "Kuma"
    assert requests.get(proc.api_url + "/meshes/default", timeout=5).status_code == 200
    assert requests.get(proc.diag_url + "/healthy", timeout=5).status_code == 200
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=15) == 0, proc.output()
    assert "stopped Control Plane" in proc.output()


def test_kuma_cp_run_stops_on_sigint(processes: Processes):
    proc = processes.start([str(BIN / "kuma-cp"), "run"], {})
    processes.wait_ready(proc)
    proc.popen.send_signal(signal.SIGINT)
    assert proc.popen.wait(timeout=15) == 0, proc.output()
