"""The control plane's own secrets (admin token, server certificate, worker key...): Secrets in
the reserved mesh `kuma.system`. That name has a dot, which Mesh names cannot (spec §3.1), so no
Mesh delete ever cascades to them and the API never serves them.

Each is made by whichever process needs it first; processes starting together are settled by
the store's unique (type, mesh, name) key: the losers read the winner's value."""

from __future__ import annotations

from collections.abc import Callable

from kuma.errors import AlreadyExistsError, NotFoundError
from kuma.resources.base import Resource
from kuma.resources.registry import SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.base import ResourceStore

MESH = "kuma.system"


def read(store: ResourceStore, name: str) -> bytes | None:
    """The bytes of Secret `name`, if it was stored."""
    try:
        found = store.get(SECRET, MESH, name)
    except NotFoundError:
        return None
    return bytes(found.spec.data)


def ensure(store: ResourceStore, name: str, make: Callable[[], bytes]) -> bytes:
    """The stored bytes of Secret `name`; `make()`'s, stored first, when there are none."""
    existing = read(store, name)
    if existing is not None:
        return existing
    data = make()
    try:
        store.create(Resource(type=SECRET, mesh=MESH, name=name, spec=SecretSpec(data=data)))
    except AlreadyExistsError:
        winner = read(store, name)
        assert winner is not None
        return winner
    return data
