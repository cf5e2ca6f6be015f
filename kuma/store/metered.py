"""Store metrics, as Kuma 1.x/2.x has them (its metered store): `store`, a summary of each
operation's duration in seconds, labelled `operation` (create, update, delete, get, list) and
`resource_type` (`Mesh`, `Dataplane`, ...); `store_conflicts`, updates refused because another
writer got there first, by `resource_type`. Wraps any store (`StoreWrapper`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Summary

from kuma.errors import ConflictError
from kuma.prom import go_counter
from kuma.resources.base import Resource
from kuma.store.base import Page
from kuma.store.wrapper import StoreWrapper

STORE = Summary("store", "Summary of Store operations", ["operation", "resource_type"])
STORE_CONFLICTS = go_counter("store_conflicts", "Counter of Store conflicts", ["resource_type"])

_T = TypeVar("_T")


class MeteredStore(StoreWrapper):
    def _timed(self, operation: str, type_: str, call: Callable[[], _T]) -> _T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            STORE.labels(operation, type_).observe(time.perf_counter() - started)

    def create(self, resource: Resource) -> Resource:
        return self._timed("create", resource.type, lambda: self.store.create(resource))

    def update(self, resource: Resource) -> Resource:
        try:
            return self._timed("update", resource.type, lambda: self.store.update(resource))
        except ConflictError:
            STORE_CONFLICTS.labels(resource.type).inc()
            raise

    def delete(self, type_: str, mesh: str, name: str) -> int:
        return self._timed("delete", type_, lambda: self.store.delete(type_, mesh, name))

    def get(self, type_: str, mesh: str, name: str) -> Resource:
        return self._timed("get", type_, lambda: self.store.get(type_, mesh, name))

    def list(self, type_: str, mesh: str | None = None, **window: Any) -> Page:
        # `window`: ResourceStore.list's keywords, passed through
        return self._timed("list", type_, lambda: self.store.list(type_, mesh, **window))
