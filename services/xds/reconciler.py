"""Event-driven push (DESIGN §3 "Push path"): changes mark meshes dirty; after a short
debounce each dirty mesh is read once, its snapshot built once, and only the dataplanes with an
open stream on this replica are regenerated. A dataplane whose generated config did not change
costs nothing downstream: the cache ignores an equal snapshot. No per-dataplane timers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kuma.errors import NotFoundError
from kuma.events import Change
from kuma.resources.base import Resource
from kuma.resources.registry import (
    MESH,
    TYPES,
)
from kuma.store.base import Known, ResourceStore
from services.xds.ads.cache import NodeSnapshot, SnapshotCache
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.counters import StreamCounters
from services.xds.build import MeshBuild, MtlsHooks
from services.xds.identity_passes import IdentityPasses
from services.xds.metrics import generation_timer
from services.xds.nodes import NodeStreams, split_node_id
from services.xds.sds.identities import IdentityManager

log = logging.getLogger("kuma.xds.reconciler")

# Types that never change what an Envoy is sent (insights, secrets): their writes do not dirty a
# mesh. The others, but Mesh itself, are read for every rebuild.
_IGNORED = frozenset(t.name for t in TYPES if not t.configures_proxies)
_INPUT_TYPES = tuple(t.name for t in TYPES if t.configures_proxies and not t.is_mesh)
_EMPTY = NodeSnapshot()


@dataclass
class ReconcileStats:
    rebuilds: int = 0  # new revisions of a mesh
    generated: int = 0  # nodes looked at (answered from their last config or generated)
    last_duration: float = 0.0


class Reconciler(StreamCallbacks):
    """Lives on the xDS process's asyncio loop. `on_change` may be called from any thread."""

    def __init__(
        self,
        store: ResourceStore,
        cache: SnapshotCache,
        loop: asyncio.AbstractEventLoop,
        *,
        debounce: float = 0.05,
        mtls: MtlsHooks | None = None,
        identities: IdentityManager | None = None,
        before_pass: Callable[[], None] | None = None,
        after_pass: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.loop = loop
        self.debounce = debounce
        self.mtls = mtls
        # Identities and trust bundles of mTLS meshes, delivered as Secrets over ADS.
        self.identities = IdentityPasses(identities)
        # told when a reconcile pass begins, and when it is over (even if it failed)
        self.before_pass = before_pass
        self.after_pass = after_pass
        self.stats = ReconcileStats()
        self._noticed: float | None = None
        self._dirty: set[str] = set()
        self._all_dirty = False
        self._wake = asyncio.Event()
        self._meshes: dict[str, MeshBuild] = {}
        self._nodes = NodeStreams()

    # --- inputs -----------------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Feed callback (feed thread): mark the change's mesh, or everything on a resync."""
        if change.is_resync:
            self.loop.call_soon_threadsafe(self.mark_all)
        elif change.type not in _IGNORED:
            self.loop.call_soon_threadsafe(self.mark, change.mesh)

    def mark(self, mesh: str) -> None:
        self._dirty.add(mesh)
        self._wake_up()

    def mark_identities(self, mesh: str, node_id: str | None = None) -> None:
        """Issue or rotate what is due in `mesh` (for `node_id`, or every node), and regenerate
        only the dataplanes whose secrets changed."""
        self.identities.mark(mesh, node_id)
        self._wake_up()

    def mark_all(self) -> None:
        self._all_dirty = True
        self._wake_up()

    def _wake_up(self) -> None:
        if self._noticed is None:
            self._noticed = time.monotonic()
        self._wake.set()

    # StreamCallbacks: a new stream makes its node a target; a closed one stops being one.
    def on_open(
        self, stream_id: str, node_id: str, node: Any, counters: StreamCounters | None = None
    ) -> None:
        self._nodes.open(stream_id, node_id, node)
        parts = split_node_id(node_id)
        if parts is None:
            log.warning("node id %r is not {mesh}.{name}; it will get no config", node_id)
            return
        state = self._meshes.get(parts[0])
        if state is not None:
            # The mesh snapshot at hand is current (the feed keeps it so): answer from it, and
            # do not rebuild the whole mesh for every stream that connects, which would make a
            # reconnect storm quadratic. In an mTLS mesh the newcomer's identity is issued
            # next, and only its config is regenerated with it.
            state.serving(len(self._nodes))
            self._generate(state, node_id)
            if state.mtls is not None:
                self.mark_identities(parts[0], node_id)
            return
        self.mark(parts[0])

    def on_close(self, stream_id: str) -> None:
        closed = self._nodes.close(stream_id)
        if closed is None:
            return
        node_id, claims_changed = closed
        parts = split_node_id(node_id)
        state = self._meshes.get(parts[0]) if parts else None
        if self._nodes.metadata(node_id) is not None:  # another of its streams describes it
            if state is not None and claims_changed:
                self._generate(state, node_id)
            return
        if not self.cache.is_watched(node_id):
            if state is not None:
                state.forget(node_id)
            self.cache.clear(node_id)
            self.identities.forget(node_id)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.debounce)  # coalesce a burst of changes into one pass
            self._wake.clear()
            await self.reconcile()

    async def reconcile(self) -> None:
        if self.before_pass is not None:
            self.before_pass()
        try:
            await self._pass()
        finally:
            if self.after_pass is not None:
                self.after_pass()

    async def _pass(self) -> None:
        watched = self._watched_by_mesh()
        if self._all_dirty:
            meshes = set(watched) | self._dirty | set(self._meshes)
        else:
            meshes = set(self._dirty)
        self._all_dirty = False
        self._dirty.clear()
        identities_due = self.identities.take_due()
        noticed, self._noticed = self._noticed or time.monotonic(), None
        started = time.perf_counter()
        for mesh in sorted(meshes):
            try:
                with generation_timer():
                    await self._reconcile_mesh(mesh, watched.get(mesh, []), noticed)
            except Exception:
                # The store may be down: keep every Envoy on its current config and retry.
                log.exception("could not rebuild mesh %r; will retry", mesh)
                self.loop.call_later(1.0, self.mark, mesh)
        for mesh, due in sorted(identities_due.items()):
            if mesh not in meshes:  # a full pass saw to them already
                await self._refresh_identities(mesh, watched.get(mesh, []), due, noticed)
        self.stats.last_duration = time.perf_counter() - started

    def _watched_by_mesh(self) -> dict[str, list[str]]:
        by_mesh: dict[str, list[str]] = {}
        for node_id in self.cache.watched():
            parts = split_node_id(node_id)
            if parts is not None:
                by_mesh.setdefault(parts[0], []).append(node_id)
        return by_mesh

    async def _reconcile_mesh(self, mesh: str, nodes: list[str], noticed: float) -> None:
        if not nodes:
            self._meshes.pop(mesh, None)  # no Envoy of that mesh here: nothing to read or build
            return
        state = self._meshes.get(mesh)
        # made here: the reading's thread only looks it up
        known = state.known if state is not None else None
        loaded = await self.loop.run_in_executor(None, load_inputs, self.store, mesh, known)
        if loaded is None:
            self._meshes.pop(mesh, None)
            self.identities.forget_mesh(mesh)
            for node_id in nodes:  # the Mesh is gone: so is every config in it (spec §8.1)
                self._publish(node_id, _EMPTY, noticed)
            return
        mesh_resource, resources = loaded
        state = self._meshes.get(mesh)
        if state is None:
            state = self._meshes[mesh] = MeshBuild(self.mtls)
        if state.advance(mesh_resource, resources):
            self.stats.rebuilds += 1
        state.next_pass(len(nodes))
        await self.identities.before_pass(state, nodes)
        for i, node_id in enumerate(nodes):
            self._generate(state, node_id, noticed)
            if i % 50 == 49:
                await asyncio.sleep(0)  # let streams breathe during a large mesh

    async def _refresh_identities(
        self, mesh: str, watched: list[str], due: set[str] | None, noticed: float
    ) -> None:
        state = self._meshes.get(mesh)
        if state is None:
            return  # no snapshot yet: a full pass will come
        changed = await self.identities.refresh(state, watched, due)
        for i, node_id in enumerate(sorted(changed)):
            self._generate(state, node_id, noticed)
            if i % 50 == 49:
                await asyncio.sleep(0)

    def _publish(self, node_id: str, snapshot: NodeSnapshot, noticed: float | None) -> None:
        # The cache keeps when the change was noticed: the streams time its delivery from then.
        # A config made for a stream that opens (`noticed` None) delivers no change.
        self.cache.set(node_id, snapshot, noticed)

    def _generate(self, state: MeshBuild, node_id: str, noticed: float | None = None) -> None:
        parts = split_node_id(node_id)
        if parts is None:
            return
        secrets = self.identities.secrets(state, node_id, parts[0])
        snapshot = state.generate(node_id, parts[1], self._nodes.metadata(node_id), secrets)
        self.stats.generated += 1
        if snapshot is not None:
            self._publish(node_id, snapshot, noticed)


def load_inputs(
    store: ResourceStore, mesh: str, known: Known | None = None
) -> tuple[Resource, list[Resource]] | None:
    """Every input of one mesh, None when the Mesh is gone (blocking: run it in a worker
    thread). What the last reading held (`known`) is not decoded again: a change of one
    resource decodes one, not the whole mesh."""
    try:
        mesh_resource = store.get(MESH, mesh, mesh)
    except NotFoundError:
        return None
    resources: list[Resource] = []
    for type_name in _INPUT_TYPES:
        resources.extend(store.list(type_name, mesh, known=known).items)
    return mesh_resource, resources
