"""Reaching the Postgres store, and bringing its schema up to date.

Migrations are the files `migrations/NNNN_name.sql`, applied in NNNN order, each in its own
transaction together with its row in `schema_migrations`. The whole run holds a session advisory
lock, so when several processes migrate at once (replicas starting together) one applies the
files and the others wait, then find nothing left to do: every file is applied exactly once.

Connection errors become StoreUnavailableError naming host, port and database, never the
password (`describe` builds the name from the parsed connection string, not from its text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from kuma.errors import ConfigError, StoreUnavailableError

# pg_advisory_lock key of schema migrations: "kuma" in ASCII, then 1. Other advisory locks of
# the product (the worker's singleton jobs) must use other keys.
MIGRATION_LOCK_KEY = 0x6B756D6100000001

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


# --- connecting -----------------------------------------------------------------------------


def conninfo_params(conninfo: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        # psycopg's message quotes part of the string, which may be the password.
        raise ConfigError("invalid Postgres connection string (not shown)") from None


def describe(conninfo: str) -> str:
    """`host=h port=p dbname=d user=u` of a connection string: safe to log, no password."""
    params = conninfo_params(conninfo)
    return " ".join(
        f"{key}={params.get(key) or 'default'}" for key in ("host", "port", "dbname", "user")
    )


def unavailable(conninfo: str, exc: BaseException) -> StoreUnavailableError:
    """StoreUnavailableError for `exc`, naming where we tried to connect."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    password = conninfo_params(conninfo).get("password")
    if password:
        reason = reason.replace(str(password), "***")
    return StoreUnavailableError(f"Postgres store unavailable ({describe(conninfo)}): {reason}")


def connect_kwargs(conninfo: str, timeout: float) -> dict[str, Any]:
    """Connection options of the store: autocommit, and a connect timeout and UTF-8 unless the
    connection string chooses otherwise."""
    kwargs: dict[str, Any] = {"autocommit": True}
    params = conninfo_params(conninfo)
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = max(1, round(timeout))  # libpq: whole seconds, 1 minimum
    if "client_encoding" not in params:
        # A database created SQL_ASCII (a server initialised without a locale) would otherwise
        # answer SQL_ASCII, and psycopg hands back text columns as bytes.
        kwargs["client_encoding"] = "UTF8"
    return kwargs


def connect(conninfo: str, timeout: float = 5.0) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(conninfo, **connect_kwargs(conninfo, timeout))
    except psycopg.OperationalError as exc:
        raise unavailable(conninfo, exc) from None


# --- migrations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # file name without .sql: "0001_init"
    sql: str


def migrations() -> list[Migration]:
    """Every migration file shipped with this build, in version order."""
    found = []
    for entry in (resources.files("kuma.store") / "migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migration files share a version: {versions}")
    return found


def latest_version() -> int:
    return migrations()[-1].version


def applied_versions(conn: psycopg.Connection[Any]) -> set[int]:
    """Versions recorded in `schema_migrations` (none when the table does not exist yet)."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def pending(conninfo: str) -> list[str]:
    """Names of the migrations this database has not applied yet, in order."""
    with connect(conninfo) as conn:
        try:
            done = applied_versions(conn)
        except psycopg.OperationalError as exc:
            raise unavailable(conninfo, exc) from None
    return [m.name for m in migrations() if m.version not in done]


def migrate(conninfo: str) -> list[str]:
    """Apply every pending migration; return the names this call applied (maybe none)."""
    applied: list[str] = []
    with connect(conninfo) as conn:
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            try:
                conn.execute(_CREATE_TABLE)
                done = applied_versions(conn)
                for migration in migrations():
                    if migration.version in done:
                        continue
                    with conn.transaction():
                        conn.execute(migration.sql.encode("utf-8"))  # no parameters: % is literal
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (migration.version, migration.name),
                        )
                    applied.append(migration.name)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        except psycopg.OperationalError as exc:
            raise unavailable(conninfo, exc) from None
    return applied
