"""The admin credential that writes need (PUT/DELETE), and where it lives.

The token is `apiServer.adminToken` when set. Otherwise the first process that starts generates
one and stores it as a Secret named `admin-token` in the reserved mesh `kuma.system`; every other
process (API replicas, `kuma-cp admin-token`) reads that same Secret. `kuma.system` can never be
a Mesh (the API forbids dots in mesh names, spec §3.1), so deleting a Mesh, even `default`,
never cascades to the token. Creating races are settled by the store's unique key: the loser
reads the winner's token.

`apiServer.adminTokenFile` names a file holding the token instead: a credential the operator
provides (a Docker or Kubernetes secret, a file on a shared volume). The control plane only reads
it, once at start; it never creates or rewrites it, so the file can be mounted read-only, replicas
cannot race to write different tokens, and a forgotten mount stops the start with a message
instead of silently switching to a generated token. Setting both `adminToken` and
`adminTokenFile` is an error. Changing the file takes effect when the API restarts.
"""

from __future__ import annotations

import secrets

from kuma import system_secrets
from kuma.config import KumaCpConfig
from kuma.errors import ConfigError
from kuma.store.base import ResourceStore

TOKEN_MESH = system_secrets.MESH
TOKEN_NAME = "admin-token"
MAX_TOKEN_FILE_BYTES = 4096
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))  # visible ASCII: one Bearer word


def read_token_file(path: str) -> str:
    """The token in `path` (surrounding whitespace, e.g. a final newline, ignored)."""
    where = f'apiServer.adminTokenFile "{path}"'
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TOKEN_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"Invalid configuration: {where} does not exist: the control plane reads this file "
            "and never creates it; write the token there first, for example "
            f"`python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {path}`"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Invalid configuration: {where} cannot be read: {exc.strerror or exc}"
        ) from None
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise ConfigError(
            f"Invalid configuration: {where} is longer than {MAX_TOKEN_FILE_BYTES} bytes"
        )
    token = raw.decode("latin-1").strip()
    if not token:
        raise ConfigError(f"Invalid configuration: {where} is empty")
    if not set(token) <= _TOKEN_CHARS:
        raise ConfigError(
            f"Invalid configuration: {where} must hold one word of visible ASCII characters "
            "(it is sent as `Authorization: Bearer <token>`)"
        )
    return token


def configured_token(cfg: KumaCpConfig) -> str | None:
    """The operator's token (`apiServer.adminToken`, else `apiServer.adminTokenFile`), if any."""
    api = cfg.api_server
    if api.admin_token and api.admin_token_file:
        raise ConfigError(
            "Invalid configuration: apiServer.adminToken and apiServer.adminTokenFile are both "
            "set: choose one"
        )
    if api.admin_token_file:
        return read_token_file(api.admin_token_file)
    return api.admin_token or None


def stored_token(store: ResourceStore) -> str | None:
    """The generated token, if one was stored."""
    data = system_secrets.read(store, TOKEN_NAME)
    return data.decode("ascii") if data is not None else None


def ensure_admin_token(cfg: KumaCpConfig, store: ResourceStore) -> str:
    """The configured token, else the stored one, else a new one (stored first)."""
    configured = configured_token(cfg)
    if configured is not None:
        return configured
    made = system_secrets.ensure(store, TOKEN_NAME, lambda: secrets.token_urlsafe(32).encode())
    return made.decode("ascii")
