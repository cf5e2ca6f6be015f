"""Fixtures of the worker tests: the machine's RabbitMQ, in a vhost of its own per test session
(created with rabbitmqctl, deleted afterwards), and `kuma-worker` processes on a fresh Postgres
database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kuma.config import KumaCpConfig, load_config

RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
RABBITMQ_START = "rabbitmq-server -detached"
ROOT = Path(__file__).resolve().parents[2]


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def amqp_uri(run_id: str) -> Iterator[str]:
    """An AMQP URI of a vhost unique to this session. Without rabbitmqctl (RabbitMQ in a
    container), the default vhost is used and the worker's queue is deleted afterwards."""
    try:
        socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"RabbitMQ is not reachable on {RABBITMQ_HOST}:{RABBITMQ_PORT} ({exc}); "
            f"start it with: {RABBITMQ_START}"
        )
    base = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}"
    if shutil.which("rabbitmqctl") is None:
        yield base + "/"
        from kombu import Connection, Queue

        with Connection(base + "/") as conn:
            Queue("rpc-kuma_worker", channel=conn.default_channel).delete()
        return
    vhost = f"kuma-test-{run_id}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{base}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def pg_env(pg: Mapping[str, str]) -> dict[str, str]:
    """KUMA_* env vars pointing the kuma config at a test database."""
    return {
        "KUMA_STORE_TYPE": "postgres",
        "KUMA_STORE_POSTGRES_HOST": pg.get("host", "127.0.0.1"),
        "KUMA_STORE_POSTGRES_PORT": pg.get("port", "5432"),
        "KUMA_STORE_POSTGRES_USER": pg.get("user", "postgres"),
        "KUMA_STORE_POSTGRES_PASSWORD": pg.get("password", "unused"),
        "KUMA_STORE_POSTGRES_DB_NAME": pg["dbname"],
    }


def worker_env(pg: Mapping[str, str], amqp: str, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env.update(pg_env(pg))
    env.update(
        {
            "KUMA_STORE_MIGRATE_ON_START": "true",
            "KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS": "4",
            "KUMA_WORKER_AMQP_URI": amqp,
            "KUMA_WORKER_HEALTH_FILE": str(tmp / f"health-{uuid.uuid4().hex[:6]}"),
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(extra)
    return env


def cfg_of(env: Mapping[str, str]) -> KumaCpConfig:
    return load_config(env={k: v for k, v in env.items() if k.startswith("KUMA_")})


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.worker.main"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.health_file = Path(env["KUMA_WORKER_HEALTH_FILE"])

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health_file.exists():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"worker did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        if self.proc.returncode is None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture()
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str], wait: bool = True) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        if wait:
            worker.wait_healthy()
        return worker

    yield start
    for worker in started:  # SIGTERM them all first: each takes a moment to drain
        if worker.proc.poll() is None:
            worker.proc.terminate()
    for worker in started:
        worker.stop()


def run_python(code: str, env: Mapping[str, str], timeout: float = 60) -> Any:
    """Run `code` in a fresh interpreter; its stdout, parsed as JSON."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
