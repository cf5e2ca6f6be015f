"""Shared test helpers: a recording subscriber and a deadline poll (never a bare sleep)."""

from __future__ import annotations

import threading

from kuma.events import Change
from kuma.resources.base import Resource


class Recorder:
    """A subscriber callback that keeps what it was given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changes: list[Change] = []

    def __call__(self, change: Change) -> None:
        with self._lock:
            self._changes.append(change)

    @property
    def changes(self) -> list[Change]:
        with self._lock:
            return list(self._changes)

    @property
    def resyncs(self) -> list[Change]:
        return [c for c in self.changes if c.is_resync]

    def names(self) -> list[str]:
        return [c.name for c in self.changes if not c.is_resync]

    def clear(self) -> None:
        with self._lock:
            self._changes.clear()


def dataplane(name: str, mesh: str = "default", version: int = 0) -> Resource:
    # The store keeps specs opaque: any value will do.
    return Resource(type="Dataplane", mesh=mesh, name=name, spec={}, version=version)


def mesh(name: str = "default") -> Resource:
    return Resource(type="Mesh", mesh=name, name=name, spec={})
