"""A database created SQL_ASCII (what a PostgreSQL initialised without a locale makes by
default): the store speaks UTF-8 to it, so text comes back as text, not bytes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from kuma.resources import registry
from kuma.resources.base import Resource
from kuma.store import PostgresStore
from kuma.store.migrate import migrate
from tests.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture()
def sql_ascii_dsn(run_id: str) -> Iterator[str]:
    name = f"kuma_test_{run_id}_ascii_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
        admin.execute(
            f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' TEMPLATE template0 "
            "LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    try:
        yield f"{PG_ADMIN_DSN} dbname={name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_sql_ascii_database_stores_and_lists_resources(sql_ascii_dsn: str) -> None:
    with psycopg.connect(sql_ascii_dsn) as conn:
        # what a plain connection gets: bytes for text
        assert conn.execute("SHOW server_encoding").fetchone() == (b"SQL_ASCII",)
    migrate(sql_ascii_dsn)
    store = PostgresStore(sql_ascii_dsn)
    try:
        spec = registry.decode_spec("Mesh", {"mtls": {"enabled": False}})
        store.create(Resource("Mesh", "demo", "demo", spec))
        listed = store.list("Mesh")
        assert [(r.mesh, r.name) for r in listed.items] == [("demo", "demo")]
        assert isinstance(listed.items[0].name, str)
        assert store.get("Mesh", "demo", "demo").spec == spec
    finally:
        store.close()
