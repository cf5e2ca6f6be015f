"""The xDS service's Prometheus metrics, fed by stream callbacks, the streams' own counters (read
when scraped) and the reconciler. Exposed at
`/metrics` on the diagnostics port. Names, types, units and labels are Kuma's (1.x/2.x), so its
dashboards read them: `xds_generation` and `xds_delivery` are summaries in milliseconds, the
counters have no `_total` suffix (`kuma.prom.go_counter`), and `type_url` labels carry the full
type URL."""

from __future__ import annotations

import time
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import REGISTRY, Gauge, Summary
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kuma.prom import go_counter
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.counters import StreamCounters

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
XDS_STREAMS = Gauge("xds_streams_active", "Open ADS streams")


def _ms(seconds: float) -> float:
    return seconds * 1000.0


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
    """Open streams, and delivery times. Responses and confirmations are read from the
    streams' own counters when `/metrics` is scraped (StreamTotals), not counted per event."""

    def __init__(self) -> None:
        self._live: dict[str, StreamCounters] = {}  # stream -> its counters
        # what closed streams counted: (type URL, confirmation or "") -> count
        self._closed: Counter[tuple[str, str]] = Counter()
        _SOURCES.add(self)

    def on_open(
        self, stream_id: str, node_id: str, node: Any, counters: StreamCounters | None = None
    ) -> None:
        XDS_STREAMS.inc()
        self._live[stream_id] = counters if counters is not None else StreamCounters()

    def on_delivered(self, stream_id: str, type_url: str, seconds: float) -> None:
        XDS_DELIVERY.observe(_ms(seconds))

    def on_close(self, stream_id: str) -> None:
        """Forget the stream in constant time (thousands close at once when a peer goes); what
        it counted stays counted."""
        counters = self._live.pop(stream_id, None)
        if counters is None:
            return
        XDS_STREAMS.dec()
        _add(self._closed, counters)

    def totals(self) -> Counter[tuple[str, str]]:
        """(type URL, "" for sent or ACK/NACK) -> count, over every stream this replica had.
        Called from the scraping thread: each read of the loop's dicts is one C-level copy."""
        out = Counter(self._closed)
        for counters in list(self._live.values()):
            _add(out, counters)
        return out


def _add(out: Counter[tuple[str, str]], counters: StreamCounters) -> None:
    for what, counted in (("", counters.sent), ("ACK", counters.acked), ("NACK", counters.nacked)):
        for type_url, n in dict(counted).items():
            out[type_url, what] += n


_SOURCES: weakref.WeakSet[MetricsCallbacks] = weakref.WeakSet()


class StreamTotals(Collector):
    """`xds_responses_sent` and `xds_requests_received` (Kuma's names and labels, gauges named
    as Kuma's Go counters: kuma.prom.go_counter), summed over every stream at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals: Counter[tuple[str, str]] = Counter()
        for source in list(_SOURCES):
            totals.update(source.totals())
        sent = GaugeMetricFamily(
            "xds_responses_sent", "Discovery responses sent", labels=["type_url"]
        )
        confirmed = GaugeMetricFamily(
            "xds_requests_received",
            "Discovery requests that confirmed a response",
            labels=["type_url", "confirmation"],
        )
        for (type_url, what), n in sorted(totals.items()):
            if what:
                confirmed.add_metric([type_url, what], n)
            else:
                sent.add_metric([type_url], n)
        yield sent
        yield confirmed


REGISTRY.register(StreamTotals())
