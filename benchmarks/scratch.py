"""Scratch resources a benchmark makes on the machine's services and removes afterwards: a
Postgres database and a RabbitMQ virtual host."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

ADMIN_DSN = os.environ.get("KUMA_BENCH_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres")
AMQP_BASE = os.environ.get("KUMA_BENCH_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")


@contextmanager
def scratch_database() -> Iterator[dict[str, str]]:
    """libpq parameters of a new, empty database (dropped on exit)."""
    name = f"kuma_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = dict(kv.split("=", 1) for kv in ADMIN_DSN.split())
    params["dbname"] = name
    try:
        yield params
    finally:
        with psycopg.connect(ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def scratch_vhost() -> Iterator[str]:
    """The AMQP URI of a new RabbitMQ virtual host (deleted on exit)."""
    if shutil.which("rabbitmqctl") is None:
        raise SystemExit("rabbitmqctl is needed to make a scratch virtual host")
    vhost = f"kuma-bench-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{AMQP_BASE}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
