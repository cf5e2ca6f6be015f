"""What only the Postgres store has: migrations, its tables, its pool, an unreachable server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kuma.errors import StoreUnavailableError
from kuma.resources import registry
from kuma.resources.base import Resource
from kuma.store import PostgresStore
from kuma.store.migrate import migrate, migrations, pending
from tests.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture()
def fresh_dsn(run_id: str, pg_dsn: str) -> Iterator[str]:
    """A second, empty database of its own, dropped afterwards."""
    name = f"kuma_test_{run_id}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_DSN} dbname={name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_migrations_apply_each_file_exactly_once(fresh_dsn: str) -> None:
    names = [m.name for m in migrations()]
    assert names[0] == "0001_init"
    assert pending(fresh_dsn) == names
    with pytest.raises(StoreUnavailableError, match="has not been migrated"):
        PostgresStore(fresh_dsn)

    barrier = threading.Barrier(4)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(migrate(fresh_dsn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert len(results) == 4
    assert sorted(name for result in results for name in result) == names  # once in all
    assert sorted(results, key=len)[:3] == [[], [], []]
    assert pending(fresh_dsn) == []
    assert migrate(fresh_dsn) == []
    with psycopg.connect(fresh_dsn) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [name for _, name in rows] == names
    PostgresStore(fresh_dsn).close()


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=127.0.0.1 port=1 dbname=kuma user=kuma password=s3cret-pw",
        "postgresql://kuma:s3cret-pw@127.0.0.1:1/kuma",
    ],
)
def test_unreachable_server_fails_fast_with_a_clear_message(conninfo: str) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        PostgresStore(conninfo, timeout=2.0)
    assert time.monotonic() - started < 2.0
    message = str(info.value)
    assert "host=127.0.0.1 port=1 dbname=kuma" in message
    assert "refused" in message
    assert "s3cret" not in message
    for call in (pending, migrate):
        with pytest.raises(StoreUnavailableError, match="port=1") as info:
            call(conninfo)
        assert "s3cret" not in str(info.value)


def test_secrets_live_in_their_own_table_as_bytes(empty_pg_store: Any, migrated_dsn: str) -> None:
    pg_store = empty_pg_store
    data = b"\x00\xffkey\x00"
    pg_store.create(Resource("Secret", "demo", "key", registry.decode_spec("Secret", data)))
    pg_store.create(Resource("Mesh", "demo", "demo", registry.decode_spec("Mesh", {})))
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT type, data FROM secrets").fetchall() == [("Secret", data)]
        assert conn.execute("SELECT type, spec FROM resources").fetchall() == [("Mesh", "{}")]


def test_pool_exhaustion_and_closed_store_are_unavailable(migrated_dsn: str) -> None:
    store = PostgresStore(migrated_dsn, min_size=1, max_size=1, timeout=0.3)
    store.ping()
    with (
        store._pool.connection(),  # the only connection is busy
        pytest.raises(StoreUnavailableError, match="no connection free within 0.3s"),
    ):
        store.revision()
    store.ping()
    store.close()
    with pytest.raises(StoreUnavailableError):
        store.ping()
