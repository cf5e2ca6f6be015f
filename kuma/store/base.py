"""The store contract every store implements (memory, Postgres).

Stores keep `Resource` records; they know nothing of validation or defaults (that is the
resource manager's job) but they do guarantee:
- (type, mesh, name) is unique; `create` of an existing key raises AlreadyExistsError;
- `update` succeeds only when the caller's `version` is the stored one, and returns the record
  with the next version; otherwise ConflictError (or NotFoundError when it is gone);
- deleting a Mesh removes every resource and secret of that mesh in the same transaction;
- every committed write bumps `revision()`, a store-wide counter that never goes back, and
  the written record carries that revision; the change feed and the xDS resync poll read it;
- `list` is ordered by (mesh, name) so that pages are stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from kuma.resources.base import Resource

# (type, mesh, name, store revision): one write of one resource
StoredKey = tuple[str, str, str, int]
Known = Mapping[StoredKey, Resource]


def stored_key(resource: Resource) -> StoredKey:
    return (resource.type, resource.mesh, resource.name, resource.revision)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Resource]
    total: int


class ResourceStore(Protocol):
    def create(self, resource: Resource) -> Resource: ...

    def update(self, resource: Resource) -> Resource: ...

    def delete(self, type_: str, mesh: str, name: str) -> int:
        """Delete (a Mesh: with everything in it); return the store revision of the write."""
        ...

    def get(self, type_: str, mesh: str, name: str) -> Resource: ...

    def list(
        self,
        type_: str,
        mesh: str | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
        known: Known | None = None,
    ) -> Page:
        """Resources of `type_` in `mesh` (every mesh when None), see `check_page`. `known`:
        resources the caller holds, by `stored_key`; a row stored at one of those revisions is
        that resource (a revision names one write), returned as is rather than decoded again."""
        ...

    def revision(self) -> int: ...

    def ping(self) -> None:
        """Raise StoreUnavailableError when the store cannot serve requests."""
        ...

    def close(self) -> None: ...


def check_page(offset: int, limit: int | None) -> None:
    """The paging rules every store follows, in one place.

    Items are ordered by (mesh, name), compared as code points (Postgres: COLLATE "C"), so
    pages are stable and both stores agree. `offset` rows are skipped, then at most `limit`
    are returned (None: all the rest). `Page.total` counts every match, whatever the window;
    an offset past the end gives no items and the true total. Negative values are a bug of
    the caller: ValueError.
    """
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError(f"offset and limit must not be negative (got {offset}, {limit})")
