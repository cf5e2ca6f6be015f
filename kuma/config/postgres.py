"""The store's Postgres settings as libpq reads them."""

from __future__ import annotations

import re

from kuma.config.schema import PostgresStoreConfig
from kuma.errors import ConfigError

_LIBPQ_SSLMODE = {
    "disable": "disable",
    "verifyNone": "require",
    "verifyCa": "verify-ca",
    "verifyFull": "verify-full",
}


def _conninfo_value(value: str) -> str:
    """libpq quoting: bare when safe, else single quotes with `\\` and `'` escaped."""
    if value and not re.search(r"[\s'\\=]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def postgres_conninfo(pg: PostgresStoreConfig) -> str:
    """A libpq conninfo string for `pg`, TLS modes mapped as Kuma maps them."""
    if pg.tls.mode not in _LIBPQ_SSLMODE:
        raise ConfigError(f"Invalid configuration: invalid mode: {pg.tls.mode}")
    params = {
        "host": pg.host,
        "port": str(pg.port),
        "user": pg.user,
        "password": pg.password,
        "dbname": pg.db_name,
        "connect_timeout": str(pg.connection_timeout),
        "sslmode": _LIBPQ_SSLMODE[pg.tls.mode],
    }
    files = {"sslcert": pg.tls.cert_path, "sslkey": pg.tls.key_path, "sslrootcert": pg.tls.ca_path}
    params.update((name, path) for name, path in files.items() if path)
    return " ".join(f"{name}={_conninfo_value(value)}" for name, value in params.items())
