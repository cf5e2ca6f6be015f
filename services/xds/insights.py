"""DataplaneInsight maintenance (spec §12.2): each ADS stream is one subscription whose
counters are flushed to the store every `dataplaneStatusFlushInterval` and on close."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kuma.errors import (
    AlreadyExistsError,
    ConflictError,
    KumaError,
    NotFoundError,
    StoreUnavailableError,
)
from kuma.manager import ResourceManager
from kuma.resources.base import Resource, now
from kuma.resources.insight import (
    DataplaneInsightSpec,
    DiscoveryServiceStats,
    MtlsInsight,
    Subscription,
    SubscriptionStatus,
)
from kuma.resources.registry import DATAPLANE_INSIGHT
from services.xds import nodes
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.counters import StreamCounters
from services.xds.ads.types import SHORT_NAMES
from services.xds.nodes import split_node_id

log = logging.getLogger("kuma.xds.insights")
_BLOCKS = ("total", "cds", "eds", "lds", "rds")
_COUNTERS = ("responses_sent", "responses_acknowledged", "responses_rejected")
NO_CERTIFICATE = object()


@dataclass
class _Live:
    mesh: str
    name: str
    connect_time: datetime
    # what the stream counts as it goes (ads/counters.py): read when the insight is written
    counters: StreamCounters = field(default_factory=StreamCounters)
    disconnect_time: datetime | None = None
    dirty: bool = True
    # An identity issued since the last write (its `mTLS` block), or NO_CERTIFICATE: the node's
    # identity was dropped (its mesh's mTLS went off), so the block goes.
    certificate: Any = None

    def take_dirty(self) -> bool:
        """Whether the subscription changed since it was last taken to be written."""
        dirty = self.dirty or self.counters.changed
        self.dirty = self.counters.changed = False
        return dirty

    def subscription(self, stream_id: str, cp_id: str) -> Subscription:
        c = self.counters
        counts = {b: dict.fromkeys(_COUNTERS, 0) for b in _BLOCKS}
        for counter, by_type in zip(_COUNTERS, (c.sent, c.acked, c.nacked), strict=True):
            for type_url, n in by_type.items():
                counts["total"][counter] += n
                if short := SHORT_NAMES.get(type_url):
                    counts[short][counter] += n
        updated = c.last_update
        return Subscription(
            id=stream_id,
            control_plane_instance_id=cp_id,
            connect_time=self.connect_time,
            disconnect_time=self.disconnect_time,
            status=SubscriptionStatus(
                last_update_time=None if updated is None else datetime.fromtimestamp(updated, UTC),
                **{b: DiscoveryServiceStats(**counts[b]) for b in _BLOCKS},
            ),
        )


class InsightRecorder(StreamCallbacks):
    def __init__(
        self,
        manager: ResourceManager,
        loop: asyncio.AbstractEventLoop,
        control_plane_id: str,
        flush_interval: float = 1.0,
    ) -> None:
        self.manager = manager
        self.loop = loop
        self.control_plane_id = control_plane_id
        self.flush_interval = flush_interval
        self._live: dict[str, _Live] = {}
        # node id -> its streams' subscriptions: a mesh turning mTLS on issues every node an
        # identity, and a scan of every stream per identity made that quadratic
        self._of_node: dict[str, dict[str, _Live]] = {}

    def on_open(
        self, stream_id: str, node_id: str, node: Any, counters: StreamCounters | None = None
    ) -> None:
        parts = split_node_id(node_id)
        if parts is not None:
            live = _Live(parts[0], parts[1], connect_time=now())
            if counters is not None:
                live.counters = counters
            self._live[stream_id] = live
            self._of_node.setdefault(node_id, {})[stream_id] = live

    def on_close(self, stream_id: str) -> None:
        if live := self._live.get(stream_id):
            live.disconnect_time = now()
            live.dirty = True  # written by the next periodic flush, or the final one on stop

    def on_certificate(self, node_id: str, identity: Any) -> None:
        """A certificate was issued to `node_id` (NO_CERTIFICATE: its identity was dropped):
        its `mTLS` block is written with the stream's."""
        for live in self._of_node.get(node_id, {}).values():
            if live.disconnect_time is None:
                live.certificate, live.dirty = identity, True

    def mark_all_dirty(self) -> None:
        for live in self._live.values():
            live.dirty = True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self) -> None:
        """Write every changed subscription; closed ones leave the live set once written.

        The batch is written by one worker-thread call: a hop to the thread and back per
        subscription cost the xDS loop more than the writes themselves, at the moment a change
        has made every subscription dirty."""
        batch = []
        for stream_id, live in self._live.items():
            if live.take_dirty():
                batch.append((live, live.subscription(stream_id, self.control_plane_id)))
        if not batch:
            return
        failed = await self.loop.run_in_executor(None, self._write_batch, batch)
        for live, subscription in batch:
            if subscription.id in failed:
                live.dirty = True  # the store is down or the mesh is gone: try again later
            elif subscription.disconnect_time is not None:
                self._forget(subscription.id, live)  # its close is written

    def _forget(self, stream_id: str, live: _Live) -> None:
        self._live.pop(stream_id, None)
        node = nodes.node_id(live.mesh, live.name)
        streams = self._of_node.get(node, {})
        streams.pop(stream_id, None)
        if not streams:
            self._of_node.pop(node, None)

    def _write_batch(self, batch: list[tuple[_Live, Subscription]]) -> set[str]:
        """Write each subscription; the ids of those not written."""
        failed: set[str] = set()
        for i, (live, subscription) in enumerate(batch):
            try:
                self._write(live, subscription)
            except StoreUnavailableError as exc:
                log.warning("could not record %d insights: %s", len(batch) - i, exc)
                failed.update(s.id for _, s in batch[i:])  # do not wait out each one
                break
            except KumaError as exc:
                log.warning("could not record insight of %s.%s: %s", live.mesh, live.name, exc)
                failed.add(subscription.id)
        return failed

    def _write(self, live: _Live, subscription: Subscription) -> None:
        for _ in range(5):  # another replica may write the same insight: re-read and retry
            try:
                current: Resource | None = self.manager.get(DATAPLANE_INSIGHT, live.mesh, live.name)
            except NotFoundError:
                current = None
            spec = current.spec if current else DataplaneInsightSpec()
            subs = [s for s in spec.subscriptions if s.id != subscription.id]
            at = next(
                (i for i, s in enumerate(spec.subscriptions) if s.id == subscription.id), len(subs)
            )
            subs.insert(at, subscription)
            new_spec = spec.model_copy(update={"subscriptions": subs})
            if (cert := live.certificate) is NO_CERTIFICATE:
                new_spec = new_spec.model_copy(update={"mtls": None})
            elif cert is not None:
                n = spec.mtls.certificate_regenerations if spec.mtls else 0
                mtls = MtlsInsight(
                    certificate_expiration_time=datetime.fromtimestamp(cert.not_after, UTC),
                    last_certificate_regeneration=datetime.fromtimestamp(cert.issued_at, UTC),
                    certificate_regenerations=n + 1,
                )
                new_spec = new_spec.model_copy(update={"mtls": mtls})
            try:
                if current is None:
                    self.manager.create(Resource(DATAPLANE_INSIGHT, live.mesh, live.name, new_spec))
                else:
                    self.manager.update(replace(current, spec=new_spec))
                if live.certificate is cert:
                    live.certificate = None
                return
            except (ConflictError, AlreadyExistsError):
                continue
        raise ConflictError(DATAPLANE_INSIGHT, live.mesh, live.name)
