"""Parts: everything generation builds for one mesh, keyed by the function that builds it and
its arguments.

`parts.build(fn, *args)` returns `fn(*args)`, built once for as long as it is used. The key is
the call itself, so it cannot drift from what the builder reads: a builder may read only its
arguments (never a global, never a mutable argument), and every argument is hashable by
content. The one exception is the mesh's `parts` itself: a builder may take it to build its
own parts through it (nested parts: `outbound.clusters` builds each cluster as a part), which
changes nothing it returns. Stored resources hash by identity and version
(kuma.resources.base.Resource), policy sets by the versions they hold (snapshot.ResourceSet),
endpoint sets by their content.

A part is shared by every dataplane that asks for it with equal arguments: a service's Cluster
is built once for the mesh, a choice of policies once for every dataplane of the same shape.
Values are shared, so callers treat them as read-only (copy before changing).

Lifetime: two passes. `next_pass(nodes)` starts a pass over the mesh's `nodes` dataplanes; what
neither it nor the one before asked for is dropped, so parts stay in proportion to what is alive
without a timer. Between passes (streams connecting to a quiet mesh) a generation also closes
once it outgrows twice the previous one, `PER_NODE` parts per node and `floor`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING = object()


class Parts:
    PER_NODE = 16  # a dataplane's own parts (about ten) and its share of the shared ones

    def __init__(self, floor: int = 1024) -> None:
        self._current: dict[tuple[Any, ...], Any] = {}
        self._previous: dict[tuple[Any, ...], Any] = {}
        self._floor = floor
        self._limit = floor
        self.built = 0
        self.reused = 0
        self.built_by: Counter[str] = Counter()  # builder's qualified name -> parts built

    def build(self, fn: Callable[..., T], *args: Any) -> T:
        key = (fn, *args)
        value = self._current.get(key, _MISSING)
        if value is _MISSING:
            value = self._previous.get(key, _MISSING)
            if value is _MISSING:
                value = fn(*args)
                self.built += 1
                self.built_by[fn.__qualname__] += 1
            else:
                self.reused += 1
            self._current[key] = value
            if len(self._current) > self._limit:
                self._rotate()
        else:
            self.reused += 1
        return value  # type: ignore[no-any-return]

    def next_pass(self, nodes: int = 0) -> None:
        self._rotate()
        self._limit = max(self._floor, self.PER_NODE * nodes, 2 * len(self._previous))

    def _rotate(self) -> None:
        self._previous, self._current = self._current, {}

    def __len__(self) -> int:
        return len(self._current.keys() | self._previous.keys())
