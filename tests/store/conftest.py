"""The `store` fixture: every contract test runs once on MemoryStore and once on PostgresStore
(on a fresh database of its own). `empty_pg_store` is the session's database, tables emptied,
for the Postgres-only tests that neither count revisions nor list everything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kuma.store import MemoryStore, ResourceStore


@pytest.fixture(scope="session")
def migrated_dsn(pg_dsn: str) -> str:
    from kuma.store.migrate import migrate

    migrate(pg_dsn)
    return pg_dsn


@pytest.fixture(scope="session")
def pg_store(migrated_dsn: str) -> Iterator[Any]:
    from kuma.store import PostgresStore

    store = PostgresStore(migrated_dsn, min_size=2, max_size=20)
    yield store
    store.close()


@pytest.fixture()
def empty_pg_store(pg_store: Any, migrated_dsn: str) -> Any:
    """The session's PostgresStore with its tables emptied (the revision counter goes on)."""
    import psycopg

    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE resources, secrets")
    return pg_store


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[ResourceStore]:
    """Each contract test on a store of its own; on Postgres, a database of its own. Tests
    count revisions and list every mesh: on the session's database, a process an earlier test
    started and that was still writing to it moved the counter under one (seen once in 1,574
    tests)."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory
        memory.close()
        return
    from kuma.store import PostgresStore
    from kuma.store.migrate import migrate

    params = request.getfixturevalue("own_pg_database")
    dsn = " ".join(f"{k}={v}" for k, v in params.items())
    migrate(dsn)
    store = PostgresStore(dsn, min_size=2, max_size=20)
    yield store
    store.close()
