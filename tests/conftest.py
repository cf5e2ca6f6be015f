"""Fixtures for the machine's real services: a fresh Postgres database and a unique Redis
prefix per test session, both removed afterwards. A service that is down fails the tests that
need it with the command that starts it (never a silent skip)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_DSN = os.environ.get("KUMA_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres")
REDIS_URL = os.environ.get("KUMA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

START_HINTS = {
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no",
}


def service_down(name: str, exc: BaseException) -> None:
    pytest.fail(f"{name} is not reachable ({exc}); start it with: {START_HINTS[name]}")


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
