"""The xDS service's Prometheus metrics (Kuma's names), fed by stream callbacks and the
reconciler. Exposed at `/metrics` on the diagnostics port."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.types import SHORT_NAMES

_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

XDS_GENERATION = Histogram(
    "xds_generation",
    "Seconds to rebuild one mesh's snapshot and regenerate its dataplanes",
    buckets=_BUCKETS,
)
XDS_DELIVERY = Histogram(
    "xds_delivery",
    "Seconds from a change being noticed to Envoy's ACK of the config it caused",
    buckets=_BUCKETS,
)
XDS_REQUESTS = Counter(
    "xds_requests_received",
    "Discovery requests that confirmed a response",
    ["type_url", "confirmation"],
)
XDS_RESPONSES = Counter("xds_responses_sent", "Discovery responses sent", ["type_url"])
XDS_STREAMS = Gauge("xds_streams_active", "Open ADS streams")


def _short(type_url: str) -> str:
    return SHORT_NAMES.get(type_url, type_url.rsplit(".", 1)[-1])


class MetricsCallbacks(StreamCallbacks):
    def __init__(self) -> None:
        # (stream, type) -> when the response now awaiting its ACK was caused by a change
        self._pending: dict[tuple[str, str], float] = {}
        self.changed_at: dict[str, float] = {}  # node id -> when its latest snapshot was noticed
        self._nodes: dict[str, str] = {}
        self._counted: dict[tuple[str, str], float] = {}

    def on_open(self, stream_id: str, node_id: str, node: Any) -> None:
        XDS_STREAMS.inc()
        self._nodes[stream_id] = node_id

    def on_response(self, stream_id: str, type_url: str, version: str, count: int) -> None:
        XDS_RESPONSES.labels(_short(type_url)).inc()
        noticed = self.changed_at.get(self._nodes.get(stream_id, ""))
        key = (stream_id, type_url)
        # Each type's first response after a change carries it; later ones (EDS repeats) do not.
        if noticed is not None and self._counted.get(key) != noticed:
            self._counted[key] = noticed
            self._pending[key] = noticed

    def snapshot_changed(self, node_id: str, noticed: float) -> None:
        """Reconciler hook: the node's config changed because of a change noticed then."""
        self.changed_at[node_id] = noticed

    def on_ack(self, stream_id: str, type_url: str) -> None:
        XDS_REQUESTS.labels(_short(type_url), "ACK").inc()
        noticed = self._pending.pop((stream_id, type_url), None)
        if noticed is not None:
            XDS_DELIVERY.observe(time.monotonic() - noticed)

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        XDS_REQUESTS.labels(_short(type_url), "NACK").inc()
        self._pending.pop((stream_id, type_url), None)

    def on_close(self, stream_id: str) -> None:
        if self._nodes.pop(stream_id, None) is not None:
            XDS_STREAMS.dec()
        for table in (self._pending, self._counted):
            for key in [k for k in table if k[0] == stream_id]:
                del table[key]
