"""Resource stores: the contract (`ResourceStore`, `Page`), the in-process `MemoryStore` and the
`PostgresStore`. `PostgresStore` is imported on first use, so memory users never load psycopg."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kuma.store.base import Page, ResourceStore
from kuma.store.memory import MemoryStore

if TYPE_CHECKING:
    from kuma.store.postgres import PostgresStore

__all__ = ["MemoryStore", "Page", "PostgresStore", "ResourceStore"]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from kuma.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
