"""Fixtures for the machine's real services: a fresh Postgres database and a unique Redis
prefix per test session, both removed afterwards. A service that is down fails the tests that
need it with the command that starts it (never a silent skip).

The lanes (README, "Tests"): a test's postgres/redis/rabbitmq marker follows from the fixtures
it requests, so no test says it by hand; `envoy` and `slow` are module marks. A test with none
of LANE_MARKERS is marked `fast`: `./scripts/test --fast` runs those, with no service up."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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


# The fixtures through which a test reaches each service (directly or through a fixture of its
# own): requesting one gives the test the service's marker.
SERVICE_FIXTURES = {
    "postgres": frozenset({"pg_database", "own_pg_database"}),
    "redis": frozenset({"redis_prefix"}),
    "rabbitmq": frozenset({"amqp_uri"}),
}
# A test with any of these is not in the fast lane; one with none of them is marked `fast`.
LANE_MARKERS = ("postgres", "redis", "rabbitmq", "envoy", "slow", "compose")
UNIT = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        for service, fixtures in SERVICE_FIXTURES.items():
            if fixtures.intersection(getattr(item, "fixturenames", ())):
                item.add_marker(service)
        lanes = [m for m in LANE_MARKERS if item.get_closest_marker(m)]
        if not lanes:
            item.add_marker("fast")
        elif item.path.is_relative_to(UNIT):
            misplaced.append(f"{item.nodeid} ({', '.join(lanes)})")
    # tests/unit is the pure, in-process, fast part: a service, an Envoy or a slow test there
    # is a test in the wrong folder, and would say so only as a slower fast lane.
    if misplaced:
        raise pytest.UsageError(
            "tests/unit holds only fast in-process tests; move these out:\n  "
            + "\n  ".join(misplaced)
        )


_current: list[pytest.Item] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _current[:] = [item]


def reached(service: str) -> None:
    """Called where a test reaches a service: a test without the service's marker reached it
    some way the derivation cannot see (getfixturevalue, a helper), and would run in the fast
    lane, where no service is up. Mark it, or request the service's fixture."""
    item = _current[0] if _current else None
    if item is not None and item.get_closest_marker(service) is None:
        pytest.fail(f"{item.nodeid} reaches {service} without the {service} marker")


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

    reached("postgres")
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

    reached("redis")
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


RABBITMQ_HOST = "127.0.0.1"
RABBITMQ_PORT = int(os.environ.get("KUMA_TEST_RABBITMQ_PORT", "5672"))
RABBITMQ_START = "rabbitmq-server -detached"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def amqp_uri(run_id: str) -> Iterator[str]:
    """An AMQP URI of a vhost unique to this session. Without rabbitmqctl (RabbitMQ in a
    container), the default vhost is used and the worker's queue is deleted afterwards."""
    reached("rabbitmq")
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
