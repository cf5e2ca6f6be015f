"""The admin credential that writes need (PUT/DELETE), and where it lives.

The token is `apiServer.adminToken` when set. Otherwise the first process that starts generates
one and stores it as a Secret named `admin-token` in the reserved mesh `kuma.system`; every other
process (API replicas, `kuma-cp admin-token`) reads that same Secret. `kuma.system` can never be
a Mesh (the API forbids dots in mesh names, spec §3.1), so deleting a Mesh, even `default`,
never cascades to the token. Creating races are settled by the store's unique key: the loser
reads the winner's token.
"""

from __future__ import annotations

import secrets

from kuma.config import KumaCpConfig
from kuma.errors import AlreadyExistsError, NotFoundError
from kuma.resources.base import Resource
from kuma.resources.registry import SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.base import ResourceStore

TOKEN_MESH = "kuma.system"
TOKEN_NAME = "admin-token"


def stored_token(store: ResourceStore) -> str | None:
    """The generated token, if one was stored."""
    try:
        found = store.get(SECRET, TOKEN_MESH, TOKEN_NAME)
    except NotFoundError:
        return None
    return bytes(found.spec.data).decode("ascii")


def ensure_admin_token(cfg: KumaCpConfig, store: ResourceStore) -> str:
    """The configured token, else the stored one, else a new one (stored first)."""
    if cfg.api_server.admin_token:
        return cfg.api_server.admin_token
    existing = stored_token(store)
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(32)
    secret = Resource(
        type=SECRET,
        mesh=TOKEN_MESH,
        name=TOKEN_NAME,
        spec=SecretSpec(data=token.encode("ascii")),
    )
    try:
        store.create(secret)
    except AlreadyExistsError:
        winner = stored_token(store)
        assert winner is not None
        return winner
    return token
