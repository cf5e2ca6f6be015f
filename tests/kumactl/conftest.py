"""Fixtures for kumactl: a private HOME per test, a CliRunner helper, and real `kuma-cp run`
control planes started as subprocesses on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from cli.kumactl.main import cli
from kuma.netutil import free_port
from tests.ports import cp_ports

KUMA_CP = [sys.executable, "-c", "from services.cp.main import cli; cli()"]


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME is a fresh directory: kumactl's config goes to `<home>/.kumactl/config`."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


Kumactl = Callable[..., Result]


@pytest.fixture()
def kumactl(home: Path) -> Kumactl:
    """Run kumactl in-process: `kumactl("get", "meshes", input=...)`; stdout and stderr apart."""

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


@dataclass
class ControlPlane:
    url: str
    port: int
    process: subprocess.Popen[bytes]


def start_control_plane(extra_env: dict[str, str] | None = None) -> ControlPlane:
    port = free_port()
    env = {
        **os.environ,
        **cp_ports(),
        "KUMA_API_SERVER_PORT": str(port),
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [*KUMA_CP, "--log-level", "off", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"kuma-cp run exited with {process.returncode}: {err}")
        try:
            # The tagline proves it is this kuma-cp answering, not whatever else took the port.
            answer = requests.get(url + "/", timeout=1)
            if answer.ok and answer.json().get("tagline") == "Kuma" and process.poll() is None:
                return ControlPlane(url, port, process)
        except requests.RequestException:
            time.sleep(0.05)
    stop_control_plane(ControlPlane(url, port, process))
    pytest.fail("kuma-cp run did not answer GET / within 30 s")


def stop_control_plane(cp: ControlPlane) -> None:
    cp.process.terminate()
    try:
        cp.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        cp.process.kill()
        cp.process.wait()


@pytest.fixture(scope="session")
def shared_cp() -> Iterator[ControlPlane]:
    """One control plane for tests that keep to their own meshes."""
    cp = start_control_plane()
    yield cp
    stop_control_plane(cp)


@pytest.fixture()
def fresh_cp() -> Iterator[ControlPlane]:
    """A control plane of this test only (for listings of every mesh)."""
    cp = start_control_plane()
    yield cp
    stop_control_plane(cp)


def use(kumactl: Kumactl, cp: ControlPlane, *extra: str) -> None:
    result = kumactl(
        "config", "control-planes", "add", "--name", "test", "--address", cp.url, *extra
    )
    assert result.exit_code == 0, result.output


@dataclass
class Canned:
    """What a stub HTTP server answers to every request, and what it saw."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    seen: list[tuple[str, str, dict[str, str], bytes]] | None = None


@pytest.fixture()
def stub_server() -> Iterator[tuple[str, Canned]]:
    """A plain HTTP server answering `Canned` (for answers a real control plane never gives)."""
    canned = Canned(seen=[])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            assert canned.seen is not None
            canned.seen.append((self.command, self.path, dict(self.headers), body))
            self.send_response(canned.status)
            self.send_header("Content-Type", canned.content_type)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", canned
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def postgres_cp(pg_database: dict[str, str]) -> Iterator[ControlPlane]:
    """`kuma-cp run` on the Postgres store (a fresh database of this test session)."""
    cp = start_control_plane(
        {
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_MIGRATE_ON_START": "true",
            "KUMA_STORE_POSTGRES_HOST": pg_database["host"],
            "KUMA_STORE_POSTGRES_PORT": pg_database["port"],
            "KUMA_STORE_POSTGRES_USER": pg_database["user"],
            "KUMA_STORE_POSTGRES_DB_NAME": pg_database["dbname"],
        }
    )
    yield cp
    stop_control_plane(cp)


@pytest.fixture(
    params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def any_cp(request: pytest.FixtureRequest) -> ControlPlane:
    """The shared control plane on each store: memory and Postgres."""
    name = "shared_cp" if request.param == "memory" else "postgres_cp"
    cp: ControlPlane = request.getfixturevalue(name)
    return cp
