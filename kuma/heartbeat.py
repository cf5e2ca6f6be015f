"""Liveness of xDS replicas: each replica heart-beats; the sweep marks the DataplaneInsight
subscriptions of a replica that stopped beating as disconnected (DESIGN §3 "Housekeeping").

Kuma 0.3 left a Dataplane "Online" forever when the control plane holding its stream crashed
(spec §12.2): nobody was left to write `disconnectTime`. Here every xDS replica calls
`beat(store, instance_id)` every `BEAT_INTERVAL`; the worker (or `kuma-cp run`, in-process) calls
`sweep(store, now, timeout)`, which, for each replica whose last beat is older than `timeout`,
sets `disconnectTime` on every still-open subscription whose `controlPlaneInstanceId` is that
replica's, then forgets the replica.

Where beats live: one Secret per replica, named `xds-heartbeat.<instance id>`, in the reserved
mesh `kuma.system` (beside the token signing key and the admin token). Why a Secret and not a
table of its own: it works unchanged on every store (memory and Postgres), it is never exposed by
the API, deleting a Mesh never touches it, and the xDS reconciler ignores Secret changes, so a
beat costs one small write and triggers no regeneration. The beat time that counts is the
store's `modification_time` (on Postgres: the database clock, one clock for every replica); the
sweep compares it with its own `now`, so the worker's clock must not be off by more than a
fraction of `timeout`.

A replica the sweep gave up on may still be alive (a long pause, a partition): its next `beat`
recreates the record and returns True, and the replica should then re-write its open
subscriptions (which the sweep closed). A replica that never beat (older code, beats not wired)
is never swept: only a replica seen alive once, then silent, is taken for dead.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from kuma.errors import AlreadyExistsError, ConflictError, NotFoundError
from kuma.resources.base import Resource
from kuma.resources.insight import DataplaneInsightSpec, Subscription
from kuma.resources.registry import DATAPLANE_INSIGHT, SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.base import ResourceStore

log = logging.getLogger(__name__)

HEARTBEAT_MESH = "kuma.system"
HEARTBEAT_PREFIX = "xds-heartbeat."
BEAT_INTERVAL = timedelta(seconds=3)
# A replica is dead after this long without a beat (about three missed beats).
DEFAULT_TIMEOUT = timedelta(seconds=10)
_PAGE = 500
_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Heartbeat:
    instance_id: str
    last_beat: datetime  # the store's modification time of the last beat


def _name(instance_id: str) -> str:
    return HEARTBEAT_PREFIX + instance_id


def _spec(instance_id: str, now: datetime) -> SecretSpec:
    body = {"instanceId": instance_id, "beatAt": now.isoformat()}
    return SecretSpec(data=json.dumps(body, separators=(",", ":")).encode("utf-8"))


def _now() -> datetime:
    return datetime.now(UTC)


def beat(store: ResourceStore, instance_id: str, now: datetime | None = None) -> bool:
    """Record that replica `instance_id` is alive. True when the record had to be created (the
    first beat, or the sweep had taken the replica for dead: re-write your open subscriptions)."""
    if not instance_id:
        raise ValueError("a heartbeat needs an instance id")
    name = _name(instance_id)
    for _ in range(_RETRIES):
        spec = _spec(instance_id, now or _now())
        try:
            current = store.get(SECRET, HEARTBEAT_MESH, name)
        except NotFoundError:
            try:
                store.create(Resource(SECRET, HEARTBEAT_MESH, name, spec))
                return True
            except AlreadyExistsError:
                continue
        try:
            store.update(replace(current, spec=spec))
            return False
        except (ConflictError, NotFoundError):
            continue  # swept (deleted) or written meanwhile: read again
    raise ConflictError(SECRET, HEARTBEAT_MESH, name)


def retire(store: ResourceStore, instance_id: str) -> None:
    """Forget replica `instance_id` (on a clean stop, after its final insight flush)."""
    with contextlib.suppress(NotFoundError):
        store.delete(SECRET, HEARTBEAT_MESH, _name(instance_id))


def heartbeats(store: ResourceStore) -> list[Heartbeat]:
    """Every replica's last beat."""
    found = []
    for record in store.list(SECRET, HEARTBEAT_MESH).items:
        if record.name.startswith(HEARTBEAT_PREFIX) and record.modification_time is not None:
            found.append(Heartbeat(record.name[len(HEARTBEAT_PREFIX) :], record.modification_time))
    return found


def all_insights(store: ResourceStore, mesh: str | None = None) -> Iterator[Resource]:
    """Every DataplaneInsight of `mesh` (None: of every mesh), read a page at a time."""
    offset = 0
    while True:
        page = store.list(DATAPLANE_INSIGHT, mesh, offset=offset, limit=_PAGE)
        yield from page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return


InsightChange = Callable[[DataplaneInsightSpec], DataplaneInsightSpec | None]


def rewrite_insight(store: ResourceStore, record: Resource, change: InsightChange) -> bool:
    """Apply `change` (None: nothing to do) to the DataplaneInsight `record` with the store's
    optimistic check, re-reading and re-applying when an xDS replica wrote it meanwhile.
    True when a new version was written; ConflictError after repeated lost races."""
    current: Resource | None = record
    for _ in range(_RETRIES):
        if current is None:
            try:
                current = store.get(DATAPLANE_INSIGHT, record.mesh, record.name)
            except NotFoundError:
                return False  # deleted meanwhile
        new_spec = change(current.spec)
        if new_spec is None:
            return False
        try:
            store.update(replace(current, spec=new_spec))
            return True
        except ConflictError:
            current = None
        except NotFoundError:
            return False
    raise ConflictError(DATAPLANE_INSIGHT, record.mesh, record.name)


def _close_subscriptions(dead: dict[str, datetime], counter: list[int]) -> InsightChange:
    def change(spec: DataplaneInsightSpec) -> DataplaneInsightSpec | None:
        closed = 0
        subs: list[Subscription] = []
        for sub in spec.subscriptions:
            last_beat = dead.get(sub.control_plane_instance_id)
            if last_beat is not None and sub.connected and sub.connect_time is not None:
                at = max(last_beat, sub.connect_time)
                sub = sub.model_copy(update={"disconnect_time": at})
                closed += 1
            subs.append(sub)
        counter[0] = closed
        return spec.model_copy(update={"subscriptions": subs}) if closed else None

    return change


def sweep(
    store: ResourceStore, now: datetime | None = None, timeout: timedelta = DEFAULT_TIMEOUT
) -> int:
    """Close every open subscription held by a replica whose last beat is older than `timeout`
    at `now`; return how many subscriptions were closed. The subscription's `disconnectTime` is
    the replica's last beat (the last moment it was known alive). A dead replica's record is
    deleted once all its subscriptions are closed. Reads no insight when every replica is alive.
    """
    now = now or _now()
    dead = {
        hb.instance_id: hb.last_beat for hb in heartbeats(store) if now - hb.last_beat > timeout
    }
    if not dead:
        return 0
    swept = 0
    unfinished = False
    for record in all_insights(store):
        holders = {s.control_plane_instance_id for s in record.spec.subscriptions if s.connected}
        if holders.isdisjoint(dead):
            continue
        counter = [0]
        try:
            if rewrite_insight(store, record, _close_subscriptions(dead, counter)):
                swept += counter[0]
        except ConflictError:
            unfinished = True  # a busy insight: the next sweep tries again
            log.warning("sweep: DataplaneInsight %s.%s kept changing", record.mesh, record.name)
    if not unfinished:
        for instance_id in dead:
            retire(store, instance_id)
    log.info(
        "sweep: %d replica(s) silent for over %ss (%s): %d subscription(s) marked disconnected",
        len(dead),
        timeout.total_seconds(),
        ", ".join(sorted(dead)),
        swept,
    )
    return swept
