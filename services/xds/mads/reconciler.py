"""The assignments every MADS client gets, kept current by the change feed (as the xDS push path,
services/xds/reconciler.py): a Mesh or Dataplane write marks what to re-read, and after a short
debounce the marked meshes and dataplanes are read once, their assignments rebuilt, and a new
snapshot published only when something changed. No timer: Kuma 0.3.2 regenerated everything
every `monitoringAssignmentServer.assignmentRefreshInterval` (docs/compat.md).

Nothing is read while no client watches: the first stream to open makes a full read, and the
state is dropped when the last one closes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import any_pb2

from kuma.errors import NotFoundError
from kuma.events import Change
from kuma.resources.registry import DATAPLANE, MESH
from kuma.store.base import ResourceStore
from services.xds.ads.stream import Inbox
from services.xds.mads import assignments

log = logging.getLogger("kuma.mads")

_INPUTS = frozenset({MESH, DATAPLANE})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """All assignments, sorted by name, packed once; `version` is a hash of them, so replicas
    reading the same store agree on it."""

    version: str
    resources: tuple[tuple[str, any_pb2.Any], ...] = ()

    @classmethod
    def build(cls, packed: dict[str, any_pb2.Any]) -> Snapshot:
        digest = hashlib.sha256()
        items = tuple(sorted(packed.items()))
        for name, resource in items:
            digest.update(name.encode())
            digest.update(b"\0")
            digest.update(resource.value)
            digest.update(b"\0")
        return cls(version=digest.hexdigest()[:16], resources=items)


class AssignmentCache:
    """The current snapshot and the inboxes of the streams watching it (asyncio loop only)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self._watchers: set[Inbox] = set()
        self.on_first_watch: Any = None  # called when the first stream starts watching
        self.on_last_unwatch: Any = None  # called when the last one stops

    def watch(self, inbox: Inbox) -> None:
        first = not self._watchers
        self._watchers.add(inbox)
        if first and self.on_first_watch is not None:
            self.on_first_watch()

    def unwatch(self, inbox: Inbox) -> None:
        if inbox not in self._watchers:
            return
        self._watchers.discard(inbox)
        if not self._watchers and self.on_last_unwatch is not None:
            self.on_last_unwatch()

    @property
    def watched(self) -> bool:
        return bool(self._watchers)

    def set(self, snapshot: Snapshot | None) -> bool:
        """Publish `snapshot`; True (and every watcher told) when its version is new."""
        old = self.snapshot
        self.snapshot = snapshot
        if snapshot is None or (old is not None and old.version == snapshot.version):
            return False
        for inbox in self._watchers:
            inbox.changed()
        return True


@dataclass
class _Mesh:
    spec: Any  # MeshSpec with metrics.prometheus
    packed: dict[str, any_pb2.Any] = field(default_factory=dict)  # dataplane name -> assignment


@dataclass
class _Plan:
    full: bool
    meshes: set[str]
    dataplanes: dict[str, set[str]]  # mesh -> names, of meshes not re-read whole


def pack(assignment: Any) -> any_pb2.Any:
    return any_pb2.Any(
        type_url=assignments.TYPE_URL, value=assignment.SerializeToString(deterministic=True)
    )


class MadsReconciler:
    """Lives on the xDS process's asyncio loop; `on_change` may be called from any thread."""

    def __init__(
        self,
        store: ResourceStore,
        cache: AssignmentCache,
        loop: asyncio.AbstractEventLoop,
        *,
        debounce: float = 0.05,
        retry_after: float = 1.0,
    ) -> None:
        self.store = store
        self.cache = cache
        self.loop = loop
        self.debounce = debounce
        self.retry_after = retry_after
        self.passes = 0
        self._active = False
        self._epoch = 0  # bumped when the state is dropped: a read begun before is discarded
        self._full = False
        self._meshes_due: set[str] = set()
        self._dataplanes_due: dict[str, set[str]] = {}
        self._state: dict[str, _Mesh] | None = None  # Prometheus meshes, once read in full
        self._wake = asyncio.Event()
        cache.on_first_watch = self.activate
        cache.on_last_unwatch = self.deactivate

    # --- inputs -----------------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Feed callback (feed thread): hand the change to the loop."""
        if change.is_resync or change.type in _INPUTS:
            self.loop.call_soon_threadsafe(self._note, change)

    def _note(self, change: Change) -> None:
        if not self._active:
            return  # nobody watches: the next watcher's full read sees this write
        if change.is_resync:
            self._full = True
        elif change.type == MESH:
            self._meshes_due.add(change.mesh)
        else:
            self._dataplanes_due.setdefault(change.mesh, set()).add(change.name)
        self._wake.set()

    def activate(self) -> None:
        if not self._active:
            self._active = True
            self._full = True
            self._wake.set()

    def deactivate(self) -> None:
        self._active = False
        self._epoch += 1
        self._state = None
        self._full = False
        self._meshes_due.clear()
        self._dataplanes_due.clear()
        self.cache.set(None)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.debounce)  # coalesce a burst of writes into one pass
            self._wake.clear()
            await self.reconcile()

    async def reconcile(self) -> None:
        if not self._active:
            return
        plan = _Plan(
            full=self._full or self._state is None,
            meshes=set(self._meshes_due),
            dataplanes={m: set(n) for m, n in self._dataplanes_due.items()},
        )
        self._full = False
        self._meshes_due.clear()
        self._dataplanes_due.clear()
        epoch = self._epoch
        state = (
            {}
            if plan.full
            else {m: _Mesh(e.spec, dict(e.packed)) for m, e in (self._state or {}).items()}
        )
        try:
            await self.loop.run_in_executor(None, self._read, plan, state)
        except Exception:
            # The store may be down: clients keep what they have; read the same again later.
            log.exception("could not read the monitoring assignments; will retry")
            self._requeue(plan)
            return
        if not self._active or epoch != self._epoch:
            return  # the last watcher left while the store was read
        self._state = state
        self.passes += 1
        packed: dict[str, any_pb2.Any] = {}
        for mesh in state.values():
            packed.update(mesh.packed)
        self.cache.set(Snapshot.build(packed))

    def _requeue(self, plan: _Plan) -> None:
        def again() -> None:
            if not self._active:
                return
            self._full = self._full or plan.full
            self._meshes_due |= plan.meshes
            for mesh, names in plan.dataplanes.items():
                self._dataplanes_due.setdefault(mesh, set()).update(names)
            self._wake.set()

        self.loop.call_later(self.retry_after, again)

    # --- reading (a worker thread: the store blocks) ----------------------------------------

    def _read(self, plan: _Plan, state: dict[str, _Mesh]) -> None:
        """Bring `state` up to date with the store for what `plan` names."""
        if plan.full:
            for resource in self.store.list(MESH).items:
                self._read_mesh(resource.name, state, resource)
            return
        for name in sorted(plan.meshes):
            self._read_mesh(name, state)
        for mesh, names in sorted(plan.dataplanes.items()):
            entry = state.get(mesh)
            if mesh in plan.meshes or entry is None:
                continue  # read whole above, or no Prometheus there
            for name in sorted(names):
                try:
                    dataplane = self.store.get(DATAPLANE, mesh, name)
                except NotFoundError:
                    entry.packed.pop(name, None)
                    continue
                self._put(mesh, entry, dataplane.name, dataplane.spec)

    def _read_mesh(self, name: str, state: dict[str, _Mesh], resource: Any = None) -> None:
        if resource is None:
            try:
                resource = self.store.get(MESH, name, name)
            except NotFoundError:
                state.pop(name, None)
                return
        spec = resource.spec
        if spec.metrics is None or spec.metrics.prometheus is None:
            state.pop(name, None)
            return
        entry = state[name] = _Mesh(spec)
        for dataplane in self.store.list(DATAPLANE, name).items:
            self._put(name, entry, dataplane.name, dataplane.spec)

    @staticmethod
    def _put(mesh: str, entry: _Mesh, name: str, spec: Any) -> None:
        assignment = assignments.build(mesh, entry.spec, name, spec)
        if assignment is None:
            entry.packed.pop(name, None)
        else:
            entry.packed[name] = pack(assignment)
