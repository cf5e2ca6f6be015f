"""What each node (`{mesh}.{name}`) should have, packed once, with content-derived versions.

Versions are hashes of the serialized bytes, not random: two xDS replicas holding the same
content give the same version (nested messages are packed deterministically for that:
generator.builders.pack), so a delta client that reconnects to another replica is not sent the
resources it says it has, and "nothing changed" costs a string compare. A SotW client is sent
its whole config on every new stream, as the protocol has it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import any_pb2
from google.protobuf.message import Message

from services.xds.ads.wire import packed_any, response_body


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.blake2b(digest_size=10)
    for part in parts:
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class Packed:
    """One resource packed into `Any` once, with the version of its bytes: two are equal when
    their names and bytes are (not compared field by field: the cache compares every changed
    node's snapshot with its last one). It keeps the `Any` encoded, as every response that
    carries it copies it."""

    name: str
    wire: bytes  # the encoded Any
    version: str

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packed):
            return NotImplemented
        return self.version == other.version and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.version)  # a str: its hash is kept (nodes' answers are keyed by these)

    @property
    def any(self) -> any_pb2.Any:
        return any_pb2.Any.FromString(self.wire)

    @classmethod
    def of(cls, name: str, message: Message) -> Packed:
        wire, value = packed_any(message)
        return cls(name, wire, _digest([value]))


@dataclass(frozen=True, slots=True)
class TypeSnapshot:
    resources: Mapping[str, Packed] = field(default_factory=dict)
    # The last selection asked for, with its version and its response's encoded fields: a
    # node's stream asks the same one (all, or the same EDS names) on every change of the
    # node's snapshot, which keeps this object for each type that did not change, and the
    # nodes that share this answer ask it too.
    _last: list[object] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def of(cls, items: tuple[Packed, ...]) -> TypeSnapshot:
        return cls({p.name: p for p in items})

    def select(self, names: Iterable[str] | None) -> list[Packed]:
        """Every resource (names None), or the named ones that exist, in name order."""
        if names is None:
            return [self.resources[n] for n in sorted(self.resources)]
        return [self.resources[n] for n in sorted(set(names)) if n in self.resources]

    def selection(self, names: frozenset[str] | None) -> tuple[list[Packed], str]:
        """`select(names)` and its version."""
        last = self._last
        if last and last[0] == names:
            return last[1], last[2]  # type: ignore[return-value]
        items = self.select(names)
        version = version_of(items)
        last[:] = [names, items, version, None]
        return items, version

    def response_body(self, names: frozenset[str] | None) -> bytes:
        """The encoded version and resources of the response to `names` (ads/wire.py), made
        once: they depend on this answer alone (the empty answer is shared by every type)."""
        items, version = self.selection(names)
        last = self._last
        if last[3] is None:
            last[3] = response_body(version, (p.wire for p in items))
        return last[3]  # type: ignore[return-value]


def version_of(items: Iterable[Packed]) -> str:
    return _digest(f"{p.name}={p.version}".encode() for p in items)


EMPTY = TypeSnapshot()


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    types: Mapping[str, TypeSnapshot] = field(default_factory=dict)

    def of(self, type_url: str) -> TypeSnapshot:
        return self.types.get(type_url, EMPTY)

    @classmethod
    def build(
        cls,
        resources: Mapping[str, Mapping[str, Message]],
        packer: Packer | None = None,
        shared: Callable[[tuple[Packed, ...]], TypeSnapshot] | None = None,
    ) -> NodeSnapshot:
        """Pack `{type_url: {name: message}}` (each message under its own xDS name), through
        `packer` to share work between nodes and passes: a type whose messages are the objects
        of an answer made before is that answer. A new one comes from `shared` when given, which
        hands nodes of equal content one object (its selection and version are then computed
        once for all of them)."""
        packer = packer if packer is not None else Packer()
        make = shared if shared is not None else TypeSnapshot.of
        return cls({url: packer.answer(by_name, make) for url, by_name in resources.items()})


class Packer:
    """Packs each message object once, and makes each type's answer of a set of message objects
    once. Generation takes every message from the mesh's parts
    (generator.parts), where a shared Cluster or an unchanged listener is the same object for
    every dataplane and every pass that asks for it: each of those is serialized once.

    An entry holds its message, so the id it is found by cannot be reused while it is there.
    Entries live for two passes over the mesh: `next_pass()` drops what the pass before last
    packed and the last one did not ask for again. Between passes (a mesh with no change for
    hours still gets rotated identities and reconnecting streams) a generation is also closed
    once it outgrows both twice the last pass and `PER_NODE` entries per node served, so
    entries stay in proportion to what is alive without a connection storm evicting the shared
    messages every node is using."""

    PER_NODE = 24  # a node's own messages (about ten), its answers (one per type) and slack

    def __init__(self, floor: int = 1024) -> None:
        # id(message) -> (message, Packed); ids of an answer's messages -> (messages, answer)
        self._current: dict[object, tuple[object, object]] = {}
        self._previous: dict[object, tuple[object, object]] = {}
        self._floor = floor
        self._nodes = 0
        self._limit = floor

    def next_pass(self) -> None:
        """A full pass over the mesh begins: what it packs is what is alive."""
        self._rotate()
        self._set_limit()

    def serving(self, nodes: int) -> None:
        """How many nodes this packer's messages are for (they bound what it keeps)."""
        self._nodes = nodes
        self._set_limit()

    def _set_limit(self) -> None:
        self._limit = max(self._floor, 2 * len(self._previous), self.PER_NODE * self._nodes)

    def _rotate(self) -> None:
        self._previous, self._current = self._current, {}

    @property
    def size(self) -> int:
        """Entries kept (not `__len__`: an empty packer must not be falsy)."""
        return len(self._current) + len(self._previous)

    def pack(self, name: str, message: Message) -> Packed:
        key = id(message)
        hit = self._held(key)
        if hit is None or hit[1].name != name:
            hit = (message, Packed.of(name, message))
        self._keep(key, hit)
        return hit[1]  # type: ignore[no-any-return]

    def answer(
        self,
        by_name: Mapping[str, Message],
        make: Callable[[tuple[Packed, ...]], TypeSnapshot] = TypeSnapshot.of,
    ) -> TypeSnapshot:
        """One type's answer made of `by_name`'s message objects, found by their identities:
        a node whose messages of a type are those of another node, or of its own last config,
        costs one look-up instead of one per message."""
        messages = tuple(by_name.values())
        key = tuple(map(id, messages))
        hit = self._held(key)
        if hit is None:
            packed = tuple(self.pack(name, m) for name, m in by_name.items())
            hit = (messages, make(packed))
        self._keep(key, hit)
        return hit[1]  # type: ignore[no-any-return]

    def answer_of(
        self,
        layers: tuple[Mapping[str, Message], ...],
        make: Callable[[tuple[Packed, ...]], TypeSnapshot] = TypeSnapshot.of,
    ) -> TypeSnapshot:
        """The answer of `layers` merged in order (a later layer's message replaces an earlier
        one's of the same name), found by the identities of the layers: nodes made of the same
        read-only mappings (generation's parts) share it, with one look-up per type."""
        key = ("layers", *map(id, layers))
        hit = self._held(key)
        if hit is None:
            merged = layers[0] if len(layers) == 1 else {k: m for d in layers for k, m in d.items()}
            hit = (layers, self.answer(merged, make))
        self._keep(key, hit)
        return hit[1]  # type: ignore[no-any-return]

    def _held(self, key: object) -> tuple[Any, Any] | None:
        """The entry kept under `key`, from this generation or taken from the last one."""
        hit = self._current.get(key)
        return hit if hit is not None else self._previous.pop(key, None)

    def _keep(self, key: object, hit: tuple[object, object]) -> None:
        # An entry holds what its key's ids name, so none of them can be reused while it is here.
        self._current[key] = hit
        if len(self._current) > self._limit:
            self._rotate()


def _same_answers(a: NodeSnapshot, b: NodeSnapshot) -> bool:
    return a is b or (
        len(a.types) == len(b.types)
        and all(b.types.get(url) is answer for url, answer in a.types.items())
    )


class Watcher(Protocol):
    def changed(self) -> None:
        """The node's snapshot changed (coalesced by the watcher: many calls, one notice)."""


class SnapshotCache:
    """Snapshots by node id, and the streams waiting for them to change. Loop-bound: call from
    the xDS process's asyncio loop."""

    def __init__(self) -> None:
        self._snapshots: dict[str, NodeSnapshot] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        # node id -> when the change that made its current snapshot was noticed (monotonic)
        self._noticed: dict[str, float] = {}

    def get(self, node_id: str) -> NodeSnapshot | None:
        return self._snapshots.get(node_id)

    def noticed(self, node_id: str) -> float | None:
        """When the change behind the node's snapshot was noticed, if set with one: its
        streams' metrics time the delivery from then."""
        return self._noticed.get(node_id)

    def set(self, node_id: str, snapshot: NodeSnapshot, noticed: float | None = None) -> bool:
        """Store the node's snapshot; False (and nobody woken) when it is made of the answers
        it had. Answers are shared and immutable, so that is an identity check: an equal copy
        wakes the node's streams, which then find every version what they sent."""
        old = self._snapshots.get(node_id)
        if old is not None and _same_answers(old, snapshot):
            return False
        self._snapshots[node_id] = snapshot
        if noticed is None:
            self._noticed.pop(node_id, None)
        else:
            self._noticed[node_id] = noticed
        self._notify(node_id)
        return True

    def clear(self, node_id: str) -> None:
        self._noticed.pop(node_id, None)
        if self._snapshots.pop(node_id, None) is not None:
            self._notify(node_id)

    def node_ids(self) -> list[str]:
        return list(self._snapshots)

    def watch(self, node_id: str, watcher: Watcher) -> None:
        self._watchers.setdefault(node_id, set()).add(watcher)

    def unwatch(self, node_id: str, watcher: Watcher) -> None:
        watchers = self._watchers.get(node_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[node_id]

    def is_watched(self, node_id: str) -> bool:
        return node_id in self._watchers

    def watched(self) -> list[str]:
        """Node ids with an open stream: the dataplanes this replica must keep current."""
        return list(self._watchers)

    def _notify(self, node_id: str) -> None:
        for watcher in self._watchers.get(node_id, ()):
            watcher.changed()
