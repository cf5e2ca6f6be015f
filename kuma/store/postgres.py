"""The Postgres store (spec §13, schema in migrations/): what the split services share.

Connections come from one bounded psycopg_pool per process, in autocommit mode: a read is one
statement and one round trip, and so is a write (create, update, delete of one resource):

    WITH rev  AS (SELECT revision + 1 AS next FROM store_revision FOR UPDATE),
         row  AS (INSERT / UPDATE ... AND version = expected / DELETE, stamped rev.next),
         bump AS (UPDATE store_revision SET revision = row.revision FROM row)
    SELECT ... FROM row

One statement is one transaction: a write that changes no row (conflict, missing) bumps
nothing, a duplicate key aborts it whole. Every write locks the revision row *first* and keeps
it until its commit, so writes commit one at a time, in revision order (whoever reads revision N
can read every write up to N), and no two writers can wait on each other in a cycle. FOR UPDATE
in READ COMMITTED reads the newest committed counter once the lock is granted; a row changed
meanwhile is re-checked against `version = expected` by Postgres before it is updated.
Deleting a Mesh takes several statements (each later one must see rows committed while it
waited), so it runs as one explicit transaction that also locks the revision row first.

Type "Secret" lives in its own table `secrets`, as raw bytes; every other type is protobuf-JSON
text in `resources`. Values are always bound parameters; only the constant table and column
names below are written into SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from kuma.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreUnavailableError
from kuma.resources import registry
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, SECRET
from kuma.store import migrate
from kuma.store.base import Known, Page, check_page

_BUMP = "UPDATE store_revision SET revision = revision + 1 RETURNING revision"
_META = "version, revision, creation_time, modification_time"


def _revised(change: str, returning: str = _META) -> str:
    """`change` (one row's INSERT/UPDATE/DELETE, reading `rev.next`) as a revision-bumping
    statement that returns `returning` of the changed row, or no row when nothing changed."""
    return (
        "WITH rev AS (SELECT revision + 1 AS next FROM store_revision FOR UPDATE),"
        f" row AS ({change} RETURNING {returning}),"
        " bump AS (UPDATE store_revision SET revision = row.revision FROM row)"
        " SELECT * FROM row"
    )


def _spec_text(spec: Any) -> str:
    return json.dumps(registry.encode_spec(spec), separators=(",", ":"), ensure_ascii=False)


def _spec_from_text(type_: str, text: str) -> Any:
    return registry.decode_spec(type_, json.loads(text))


def _secret_bytes(spec: Any) -> bytes:
    return bytes(spec.data)


def _secret_from_bytes(type_: str, data: bytes) -> Any:
    return registry.decode_spec(type_, bytes(data))


def _key(alias: str) -> str:
    return f"{alias}type = %(type)s AND {alias}mesh = %(mesh)s AND {alias}name = %(name)s"


class _Table:
    """The SQL of one table; `column` holds the spec, in the form `encode` gives."""

    def __init__(
        self,
        table: str,
        column: str,
        encode: Callable[[Any], Any],
        decode: Callable[[str, Any], Any],
    ) -> None:
        self.encode, self.decode = encode, decode
        key = _key("")
        self.get = f"SELECT {column}, {_META} FROM {table} WHERE {key}"
        self.exists = f"SELECT 1 FROM {table} WHERE {key}"
        self.insert = _revised(
            f"INSERT INTO {table} (type, mesh, name, version, revision, {column})"
            f" SELECT %(type)s, %(mesh)s, %(name)s, 1, rev.next, %(payload)s FROM rev"
        )
        self.update = _revised(
            f"UPDATE {table} AS r SET {column} = %(payload)s, version = r.version + 1,"
            f" revision = rev.next, modification_time = now()"
            f" FROM rev WHERE {_key('r.')} AND r.version = %(expected)s"
        )
        self.delete_row = f"DELETE FROM {table} WHERE {key}"
        self.delete = _revised(
            f"DELETE FROM {table} AS r USING rev WHERE {_key('r.')}", "rev.next AS revision"
        )
        # One statement, one snapshot: the total, and the page (LEFT JOIN: the total comes
        # back even when the offset is past the end).
        self.list_sql = {
            with_mesh: (
                f"SELECT c.total, p.mesh, p.name, p.{column}, p.version, p.revision,"
                f" p.creation_time, p.modification_time"
                f" FROM (SELECT count(*) AS total FROM {table} WHERE {where}) AS c"
                f" LEFT JOIN LATERAL (SELECT * FROM {table} WHERE {where}"
                f" ORDER BY mesh, name OFFSET %(offset)s LIMIT %(limit)s) AS p ON true"
                f" ORDER BY p.mesh, p.name"
            )
            for with_mesh, where in (
                (True, "type = %(type)s AND mesh = %(mesh)s"),
                (False, "type = %(type)s"),
            )
        }


_RESOURCES = _Table("resources", "spec", _spec_text, _spec_from_text)
_SECRETS = _Table("secrets", "data", _secret_bytes, _secret_from_bytes)


def _table(type_: str) -> _Table:
    return _SECRETS if type_ == SECRET else _RESOURCES


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC)


class PostgresStore:
    """`ResourceStore` on Postgres. Versions go 1, 2, 3... like MemoryStore's.

    The constructor connects (failing fast with StoreUnavailableError when the server cannot be
    reached) and checks the schema is migrated; `close()` closes the pool.
    """

    def __init__(
        self, conninfo: str, min_size: int = 1, max_size: int = 10, timeout: float = 5.0
    ) -> None:
        self._conninfo = conninfo
        self._timeout = timeout
        self.where = migrate.describe(conninfo)
        kwargs = migrate.connect_kwargs(conninfo, timeout)
        # One direct connection first: a refused port fails now with libpq's reason, where the
        # pool would retry in the background until the timeout.
        with migrate.connect(conninfo, timeout) as probe:
            try:
                behind = migrate.latest_version() not in migrate.applied_versions(probe)
            except psycopg.OperationalError as exc:
                raise migrate.unavailable(conninfo, exc) from None
        if behind:
            raise StoreUnavailableError(
                f"Postgres store at {self.where} has not been migrated to this version's "
                f"schema: run `kuma-cp migrate up`"
            )
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            # The pool retries a lost connection in the background with a back-off that doubles
            # for as long as the server stays down (up to 5 minutes by default), and meanwhile
            # a request only waits: after a long outage the store would stay unavailable for
            # about as long again. Give up retrying after `timeout`, so the next request
            # starts a fresh attempt: the store recovers within seconds of the server.
            reconnect_timeout=max(timeout, 1.0),
            kwargs=kwargs,
            open=False,
            name="kuma-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise migrate.unavailable(conninfo, exc) from None

    def __repr__(self) -> str:
        return f"PostgresStore({self.where})"

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreUnavailableError(
                f"Postgres store unavailable ({self.where}): no connection free within "
                f"{self._timeout:g}s (pool max_size={self._pool.max_size})"
            ) from None
        except psycopg.OperationalError as exc:
            raise migrate.unavailable(self._conninfo, exc) from None

    def _write(self, table: _Table, statement: str, params: dict[str, Any]) -> tuple[Any, ...]:
        """Run a revision-bumping `statement`; the row it returns, or the error of no row."""
        key = (params["type"], params["mesh"], params["name"])
        with self._connection() as conn:
            try:
                row = conn.execute(statement, params).fetchone()
            except psycopg.errors.UniqueViolation:
                raise AlreadyExistsError(*key) from None
            if row is None:
                exists = "expected" in params and conn.execute(table.exists, params).fetchone()
                raise (ConflictError if exists else NotFoundError)(*key)
        return row

    def _stored(self, resource: Resource, row: tuple[Any, ...]) -> Resource:
        version, revision, created, modified = row
        return Resource(
            resource.type,
            resource.mesh,
            resource.name,
            resource.spec,
            version,
            revision,
            _utc(created),
            _utc(modified),
        )

    # --- ResourceStore ----------------------------------------------------------------------

    def create(self, resource: Resource) -> Resource:
        table = _table(resource.type)
        params = {
            "type": resource.type,
            "mesh": resource.mesh,
            "name": resource.name,
            "payload": table.encode(resource.spec),
        }
        return self._stored(resource, self._write(table, table.insert, params))

    def update(self, resource: Resource) -> Resource:
        table = _table(resource.type)
        params = {
            "type": resource.type,
            "mesh": resource.mesh,
            "name": resource.name,
            "payload": table.encode(resource.spec),
            "expected": resource.version,
        }
        return self._stored(resource, self._write(table, table.update, params))

    def delete(self, type_: str, mesh: str, name: str) -> int:
        key = {"type": type_, "mesh": mesh, "name": name}
        if type_ != MESH:
            table = _table(type_)
            return int(self._write(table, table.delete, key)[0])
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            row = cur.execute(_BUMP).fetchone()  # the revision lock first, as every write
            cur.execute(_RESOURCES.delete_row, key)
            if cur.rowcount == 0:
                raise NotFoundError(type_, mesh, name)  # rolls the bump back
            # A Mesh is its own mesh: everything in it goes too.
            cur.execute("DELETE FROM resources WHERE mesh = %(name)s", key)
            cur.execute("DELETE FROM secrets WHERE mesh = %(name)s", key)
        assert row is not None
        return int(row[0])

    def get(self, type_: str, mesh: str, name: str) -> Resource:
        table = _table(type_)
        with self._connection() as conn:
            row = conn.execute(table.get, {"type": type_, "mesh": mesh, "name": name}).fetchone()
        if row is None:
            raise NotFoundError(type_, mesh, name)
        payload, version, revision, created, modified = row
        return Resource(
            type_,
            mesh,
            name,
            table.decode(type_, payload),
            version,
            revision,
            _utc(created),
            _utc(modified),
        )

    def list(
        self,
        type_: str,
        mesh: str | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
        known: Known | None = None,
    ) -> Page:
        check_page(offset, limit)
        table = _table(type_)
        params = {"type": type_, "mesh": mesh, "offset": offset, "limit": limit}
        with self._connection() as conn:
            rows = conn.execute(table.list_sql[mesh is not None], params).fetchall()
        known = known or {}
        items = [
            known.get((type_, r_mesh, name, revision))
            or Resource(
                type_,
                r_mesh,
                name,
                table.decode(type_, payload),
                version,
                revision,
                _utc(created),
                _utc(modified),
            )
            for _, r_mesh, name, payload, version, revision, created, modified in rows
            if name is not None
        ]
        return Page(items=items, total=rows[0][0] if rows else 0)

    def revision(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT revision FROM store_revision").fetchone()
        assert row is not None
        return int(row[0])

    def ping(self) -> None:
        with self._connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._pool.close()
