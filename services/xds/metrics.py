"""The xDS service's Prometheus metrics, fed by stream callbacks and the reconciler. Exposed at
`/metrics` on the diagnostics port. Names, types, units and labels are Kuma's (1.x/2.x), so its
dashboards read them: `xds_generation` and `xds_delivery` are summaries in milliseconds, the
counters have no `_total` suffix (`kuma.prom.go_counter`), and `type_url` labels carry the full
type URL."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Gauge, Summary

from kuma.prom import go_counter
from services.xds.ads.callbacks import StreamCallbacks

XDS_GENERATION = Summary(
    "xds_generation",
    "Summary of XDS Snapshot generation: milliseconds to rebuild one mesh's snapshot and "
    "regenerate its dataplanes",
)
XDS_GENERATION_ERRORS = go_counter("xds_generation_errors", "Errors of XDS Snapshot generation")
XDS_DELIVERY = Summary(
    "xds_delivery",
    "Summary of XDS Snapshot delivery: milliseconds from a change being noticed to Envoy's "
    "ACK of the config it caused",
)
XDS_REQUESTS = go_counter(
    "xds_requests_received",
    "Discovery requests that confirmed a response",
    ["type_url", "confirmation"],
)
XDS_RESPONSES = go_counter("xds_responses_sent", "Discovery responses sent", ["type_url"])
XDS_STREAMS = Gauge("xds_streams_active", "Open ADS streams")


def _ms(seconds: float) -> float:
    return seconds * 1000.0


# Labelled children, looked up once: every response and every ACK counts in one of them.
@functools.cache
def _responses(type_url: str) -> Any:
    return XDS_RESPONSES.labels(type_url)


@functools.cache
def _requests(type_url: str, confirmation: str) -> Any:
    return XDS_REQUESTS.labels(type_url, confirmation)


@contextmanager
def generation_timer() -> Iterator[None]:
    """Time one mesh's generation into `xds_generation` (ms); count it in
    `xds_generation_errors` when it fails."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        XDS_GENERATION_ERRORS.inc()
        raise
    finally:
        XDS_GENERATION.observe(_ms(time.perf_counter() - started))


class MetricsCallbacks(StreamCallbacks):
    def __init__(self) -> None:
        # stream -> type -> when the response now awaiting its ACK was caused by a change
        self._pending: dict[str, dict[str, float]] = {}
        # stream -> type -> the change its latest counted response carried
        self._counted: dict[str, dict[str, float]] = {}
        self.changed_at: dict[str, float] = {}  # node id -> when its latest snapshot was noticed
        self._nodes: dict[str, str] = {}  # stream -> node id
        self._streams_of: dict[str, int] = {}  # node id -> open streams

    def on_open(self, stream_id: str, node_id: str, node: Any) -> None:
        XDS_STREAMS.inc()
        self._nodes[stream_id] = node_id
        self._streams_of[node_id] = self._streams_of.get(node_id, 0) + 1

    def on_response(self, stream_id: str, type_url: str, version: str, count: int) -> None:
        _responses(type_url).inc()
        noticed = self.changed_at.get(self._nodes.get(stream_id, ""))
        counted = self._counted.setdefault(stream_id, {})
        # Each type's first response after a change carries it; later ones (EDS repeats) do not.
        if noticed is not None and counted.get(type_url) != noticed:
            counted[type_url] = noticed
            self._pending.setdefault(stream_id, {})[type_url] = noticed

    def snapshot_changed(self, node_id: str, noticed: float) -> None:
        """Reconciler hook: the node's config changed because of a change noticed then."""
        if node_id in self._streams_of:
            self.changed_at[node_id] = noticed

    def on_ack(self, stream_id: str, type_url: str) -> None:
        _requests(type_url, "ACK").inc()
        noticed = self._pending.get(stream_id, {}).pop(type_url, None)
        if noticed is not None:
            XDS_DELIVERY.observe(_ms(time.monotonic() - noticed))

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        _requests(type_url, "NACK").inc()
        self._pending.get(stream_id, {}).pop(type_url, None)

    def on_close(self, stream_id: str) -> None:
        """Forget the stream in constant time (thousands close at once when a peer goes)."""
        self._pending.pop(stream_id, None)
        self._counted.pop(stream_id, None)
        node_id = self._nodes.pop(stream_id, None)
        if node_id is None:
            return
        XDS_STREAMS.dec()
        left = self._streams_of.pop(node_id) - 1
        if left:
            self._streams_of[node_id] = left
        else:
            self.changed_at.pop(node_id, None)
