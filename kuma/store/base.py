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

from dataclasses import dataclass
from typing import Protocol

from kuma.resources.base import Resource


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
        self, type_: str, mesh: str | None = None, *, offset: int = 0, limit: int | None = None
    ) -> Page: ...

    def revision(self) -> int: ...

    def ping(self) -> None:
        """Raise StoreUnavailableError when the store cannot serve requests."""
        ...

    def close(self) -> None: ...
