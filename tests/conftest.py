"""Fixtures for the machine's real services: a fresh Postgres database and a unique Redis
prefix per test session, both removed afterwards. A service that is down fails the tests that
need it with the command that starts it (never a silent skip)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

PG_ADMIN_DSN = os.environ.get("KUMA_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres")
REDIS_URL = os.environ.get("KUMA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

START_HINTS = {
    "rabbitmq": "rabbitmq-server -detached",
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no",
}


def service_down(name: str, exc: BaseException) -> None:
    pytest.fail(f"{name} is not reachable ({exc}); start it with: {START_HINTS[name]}")


_ROOT_LEVEL = logging.getLogger().level


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> None:
    """A command run in-process (click's runner) sets up logging as its binary does, e.g. the
    root logger at `off`, possibly in a module-scoped fixture set up before this one: every
    test starts from the root level the session started with, so it sees the records it checks."""
    logging.getLogger().setLevel(_ROOT_LEVEL)
    logging.captureWarnings(False)


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:12]


@contextmanager
def fresh_database(name: str) -> Iterator[dict[str, str]]:
    """Create database `name`, yield its libpq keywords (host, port, user, dbname), drop it."""
    import psycopg

    try:
        admin = psycopg.connect(
            PG_ADMIN_DSN + " dbname=postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as exc:
        service_down("postgres", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = dict(kv.split("=", 1) for kv in PG_ADMIN_DSN.split())
    params["dbname"] = name
    try:
        yield params
    finally:
        with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database(run_id: str) -> Iterator[dict[str, str]]:
    """A fresh database shared by this test session."""
    with fresh_database(f"kuma_test_{run_id}") as params:
        yield params


@pytest.fixture()
def own_pg_database(run_id: str) -> Iterator[dict[str, str]]:
    """A fresh database for one test only, for tests that need to see an untouched store."""
    with fresh_database(f"kuma_test_{run_id}_{uuid.uuid4().hex[:6]}") as params:
        yield params


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


@pytest.fixture(scope="session")
def pg_dsn(pg_database: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in pg_database.items())


@pytest.fixture()
def redis_prefix(run_id: str) -> Iterator[str]:
    """A key/channel prefix unique to this test; keys under it are deleted afterwards."""
    import redis

    prefix = f"kuma-test:{run_id}:{uuid.uuid4().hex[:6]}:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_down("redis", exc)
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
RABBITMQ_START = "rabbitmq-server -detached"


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
