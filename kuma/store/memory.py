"""The in-process store: `kuma-cp run`'s default, lost on restart (spec §2.6).

Everything happens under one lock, so each method is atomic, exactly like one Postgres
transaction. Records are immutable (`Resource` and its spec are frozen), so they are handed out
without copying. They are kept per type, then by (mesh, name): a list touches only its own type.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from kuma.errors import AlreadyExistsError, ConflictError, NotFoundError
from kuma.resources.base import Resource, now
from kuma.resources.registry import MESH
from kuma.store.base import Known, Page, check_page

_Records = dict[tuple[str, str], Resource]  # (mesh, name) -> record, for one type


class MemoryStore:
    """`ResourceStore` in a dict. Versions go 1, 2, 3...; Secrets are just another type."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_type: dict[str, _Records] = {}
        self._revision = 0

    def _stamp(self, resource: Resource, version: int, created: Resource | None) -> Resource:
        """The record as stored by this write (lock held): next revision, write time."""
        self._revision += 1
        written = now()
        return replace(
            resource,
            version=version,
            revision=self._revision,
            creation_time=created.creation_time if created else written,
            modification_time=written,
        )

    def create(self, resource: Resource) -> Resource:
        with self._lock:
            records = self._by_type.setdefault(resource.type, {})
            key = (resource.mesh, resource.name)
            if key in records:
                raise AlreadyExistsError(*resource.key)
            records[key] = stored = self._stamp(resource, 1, None)
        return stored

    def update(self, resource: Resource) -> Resource:
        with self._lock:
            key = (resource.mesh, resource.name)
            current = self._by_type.get(resource.type, {}).get(key)
            if current is None:
                raise NotFoundError(*resource.key)
            if current.version != resource.version:
                raise ConflictError(*resource.key)
            self._by_type[resource.type][key] = stored = self._stamp(
                resource, current.version + 1, current
            )
        return stored

    def delete(self, type_: str, mesh: str, name: str) -> int:
        with self._lock:
            records = self._by_type.get(type_, {})
            if records.pop((mesh, name), None) is None:
                raise NotFoundError(type_, mesh, name)
            if type_ == MESH:
                for other in self._by_type.values():
                    for key in [k for k in other if k[0] == name]:
                        del other[key]
            self._revision += 1
            return self._revision

    def get(self, type_: str, mesh: str, name: str) -> Resource:
        found = self._by_type.get(type_, {}).get((mesh, name))  # one dict read: atomic
        if found is None:
            raise NotFoundError(type_, mesh, name)
        return found

    def list(
        self,
        type_: str,
        mesh: str | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
        known: Known | None = None,
    ) -> Page:
        # `known` saves nothing here: the records are already the objects handed out.
        check_page(offset, limit)
        with self._lock:
            records = self._by_type.get(type_, {})
            if mesh is None:
                matches = list(records.items())
            else:
                matches = [(k, r) for k, r in records.items() if k[0] == mesh]
        matches.sort(key=lambda item: item[0])  # outside the lock: (mesh, name) order
        end = None if limit is None else offset + limit
        return Page(items=[r for _, r in matches[offset:end]], total=len(matches))

    def revision(self) -> int:
        return self._revision

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
