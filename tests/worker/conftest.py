"""Fixtures of the worker tests: the machine's RabbitMQ, in a vhost of its own per test session
(created with rabbitmqctl, deleted afterwards), and `kuma-worker` processes on a fresh Postgres
database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kuma.config import KumaCpConfig, load_config
from tests.conftest import pg_env

ROOT = Path(__file__).resolve().parents[2]


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
