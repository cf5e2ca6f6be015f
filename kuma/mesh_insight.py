"""Counts for a screen's first paint, without paging through a mesh: Kuma 1.x's MeshInsight
(dataplanes total/online/offline, policies per kind) and what the xDS replicas publish about
themselves (their heartbeats; their open streams and rejected updates, read from insights).

Computed on request from the store: a policy count is one `list(limit=1)` (the store counts);
online dataplanes and streams take one pass over the DataplaneInsights, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kuma import heartbeat
from kuma.resources.base import Resource, format_timestamp
from kuma.resources.insight import Subscription
from kuma.resources.registry import DATAPLANE, DATAPLANE_INSIGHT, MESH, TYPES
from kuma.store.base import ResourceStore

MESH_INSIGHT = "MeshInsight"
# The policy kinds a MeshInsight counts: every mesh-scoped type the API exposes, but dataplanes.
POLICY_TYPES = tuple(
    t.name for t in TYPES if t.exposed and t.name not in (MESH, DATAPLANE, DATAPLANE_INSIGHT)
)


def count(store: ResourceStore, type_name: str, mesh: str) -> int:
    return store.list(type_name, mesh, offset=0, limit=1).total


def mesh_insight(store: ResourceStore, mesh: str) -> dict[str, Any]:
    """`{"type": "MeshInsight", "name", "dataplanes": {total, online, offline}, "policies":
    {<type>: {"total"}}}` for `mesh` (which must exist: the caller checks)."""
    total = count(store, DATAPLANE, mesh)
    online = sum(1 for i in heartbeat.all_insights(store, mesh) if i.spec.is_online())
    online = min(online, total)  # an insight may outlive its dataplane until the clean-up
    return {
        "type": MESH_INSIGHT,
        "name": mesh,
        "dataplanes": {"total": total, "online": online, "offline": total - online},
        "policies": {t: {"total": count(store, t, mesh)} for t in POLICY_TYPES},
    }


@dataclass(frozen=True)
class _Rejection:
    at: datetime
    body: dict[str, Any]


def _rejection(record: Resource, sub: Subscription) -> _Rejection | None:
    status = sub.status
    if not status.total.responses_rejected:
        return None
    by_type = {
        kind: getattr(status, kind).responses_rejected
        for kind in ("cds", "eds", "lds", "rds")
        if getattr(status, kind).responses_rejected
    }
    at = status.last_update_time or sub.connect_time or datetime.min.replace(tzinfo=UTC)
    body = {
        "mesh": record.mesh,
        "name": record.name,
        "subscription": sub.id,
        "controlPlaneInstanceId": sub.control_plane_instance_id,
        "rejected": status.total.responses_rejected,
        "rejectedByType": by_type,
        "lastUpdateTime": format_timestamp(status.last_update_time)
        if status.last_update_time
        else None,
    }
    return _Rejection(at, body)


def xds_status(
    store: ResourceStore,
    now: datetime | None = None,
    recent: int = 20,
    timeout: Any = heartbeat.DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """The xDS replicas (from their heartbeats) with the streams each holds open (from the
    insights' open subscriptions), and the `recent` latest subscriptions with rejected updates
    (NACKs: the insights keep counts per type, not Envoy's messages)."""
    now = now or datetime.now(UTC)
    streams: dict[str, int] = {}
    rejections: list[_Rejection] = []
    for record in heartbeat.all_insights(store, None):
        for sub in record.spec.subscriptions:
            if sub.connected:
                key = sub.control_plane_instance_id
                streams[key] = streams.get(key, 0) + 1
            found = _rejection(record, sub)
            if found is not None:
                rejections.append(found)
    beats = {hb.instance_id: hb.last_beat for hb in heartbeat.heartbeats(store)}
    replicas = [
        {
            "instanceId": instance,
            "lastBeat": format_timestamp(beats[instance]) if instance in beats else None,
            "alive": instance in beats and now - beats[instance] <= timeout,
            "streams": streams.get(instance, 0),
        }
        for instance in sorted(set(beats) | set(streams))
    ]
    rejections.sort(key=lambda r: r.at, reverse=True)
    return {"replicas": replicas, "rejections": [r.body for r in rejections[:recent]]}
