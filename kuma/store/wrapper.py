"""The base of the store wrappers (publishing, metering): every call and attribute goes to the
inner store unless the wrapper defines it."""

from __future__ import annotations

from typing import Any

from kuma.resources.base import Resource
from kuma.store.base import Page, ResourceStore


class StoreWrapper:
    def __init__(self, store: ResourceStore) -> None:
        self.store = store

    def create(self, resource: Resource) -> Resource:
        return self.store.create(resource)

    def update(self, resource: Resource) -> Resource:
        return self.store.update(resource)

    def delete(self, type_: str, mesh: str, name: str) -> int:
        return self.store.delete(type_, mesh, name)

    def get(self, type_: str, mesh: str, name: str) -> Resource:
        return self.store.get(type_, mesh, name)

    def list(self, type_: str, mesh: str | None = None, **window: Any) -> Page:
        # `window`: ResourceStore.list's keywords, passed through
        return self.store.list(type_, mesh, **window)

    def revision(self) -> int:
        return self.store.revision()

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()

    def __getattr__(self, name: str) -> Any:
        # Store-specific extras (e.g. a Postgres store's pool stats) stay reachable.
        if name == "store":  # not set yet (copy, unpickling): avoid endless recursion
            raise AttributeError(name)
        return getattr(self.store, name)
