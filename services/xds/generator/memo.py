"""What one dataplane's generation built last time, by part, to build only what changed.

Parts are the policies chosen for the dataplane and the messages built from them.

A mesh-wide policy change usually touches one part of each dataplane's config (a HealthCheck
changes a shared cluster, not the dataplane's inbound listener). Each part is keyed by the inputs
it reads; when they equal last generation's, the part's messages are returned as they were: not
built again, and, being the same objects, not serialized again either (see ads.cache.Packer).

Keys are compared by equality, so a key is correct as long as it holds everything the part
reads. The reconciler keeps an unchanged resource's object from one mesh snapshot to the next,
so the usual comparison is an identity check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class PartMemo:
    """One dataplane's parts. Messages it returns are shared with the previous generation's
    config: treat them as read-only, like every generated message."""

    def __init__(self) -> None:
        self._parts: dict[str, tuple[Any, Any]] = {}
        self.built = 0
        self.reused = 0

    def part(self, name: str, key: Any, build: Callable[[], T]) -> T:
        last = self._parts.get(name)
        if last is not None and last[0] == key:
            self.reused += 1
            return last[1]  # type: ignore[no-any-return]
        value = build()
        self._parts[name] = (key, value)
        self.built += 1
        return value
