"""The xDS service's metrics callbacks: delivery is observed once per changed type and stream,
and a closed stream leaves nothing behind (thousands close at once when a peer goes away)."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from services.xds.ads.types import CLUSTER, ENDPOINT
from services.xds.metrics import MetricsCallbacks, generation_timer


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_delivery_is_observed_once_per_type_and_stream_and_closing_forgets_everything():
    metrics = MetricsCallbacks()
    streams_before = sample("xds_streams_active")
    delivered_before = sample("xds_delivery_count")
    metrics.on_open("s1", "default.web-1", None)
    metrics.on_open("s2", "default.web-1", None)  # a second stream of the same node
    metrics.on_open("s3", "default.db-1", None)
    assert sample("xds_streams_active") == streams_before + 3

    metrics.snapshot_changed("default.web-1", time.monotonic())
    metrics.snapshot_changed("default.gone-1", time.monotonic())  # no stream: not kept
    for stream in ("s1", "s2"):
        for type_url in (CLUSTER, ENDPOINT):
            metrics.on_response(stream, type_url, "v2", 1)
        metrics.on_response(stream, ENDPOINT, "v2", 1)  # a repeat carries no change
        metrics.on_ack(stream, CLUSTER)
        metrics.on_ack(stream, ENDPOINT)
        metrics.on_ack(stream, ENDPOINT)
    metrics.on_response("s3", CLUSTER, "v1", 1)  # db-1 did not change
    metrics.on_ack("s3", CLUSTER)
    assert sample("xds_delivery_count") == delivered_before + 4

    for stream in ("s1", "s2", "s3"):
        metrics.on_close(stream)
        metrics.on_close(stream)  # closing twice is harmless
    assert sample("xds_streams_active") == streams_before
    assert metrics.changed_at == {}
    assert (metrics._pending, metrics._counted, metrics._nodes) == ({}, {}, {})


def test_a_nack_ends_the_wait_without_a_delivery():
    metrics = MetricsCallbacks()
    delivered_before = sample("xds_delivery_count")
    metrics.on_open("s1", "default.web-1", None)
    metrics.snapshot_changed("default.web-1", time.monotonic())
    metrics.on_response("s1", CLUSTER, "v2", 1)
    metrics.on_nack("s1", CLUSTER, "v2", "bad cluster")
    metrics.on_ack("s1", CLUSTER)  # a later ACK of the old config is not a delivery
    assert sample("xds_delivery_count") == delivered_before
    metrics.on_close("s1")


def test_kumas_units_and_labels_milliseconds_and_full_type_urls():
    metrics = MetricsCallbacks()
    labels = {"type_url": CLUSTER, "confirmation": "ACK"}
    acked_before = sample("xds_requests_received", labels)
    took_before = sample("xds_delivery_sum")
    metrics.on_open("s1", "default.web-1", None)
    metrics.snapshot_changed("default.web-1", time.monotonic() - 0.5)  # noticed 500 ms ago
    metrics.on_response("s1", CLUSTER, "v2", 1)
    metrics.on_ack("s1", CLUSTER)
    metrics.on_close("s1")
    assert CLUSTER.startswith("type.googleapis.com/")
    assert sample("xds_requests_received", labels) == acked_before + 1
    assert 500 <= sample("xds_delivery_sum") - took_before < 5000  # ms, not seconds


def test_generation_is_timed_in_milliseconds_and_failures_are_counted():
    count, errors = sample("xds_generation_count"), sample("xds_generation_errors")
    took = sample("xds_generation_sum")
    with generation_timer():
        time.sleep(0.02)
    assert 20 <= sample("xds_generation_sum") - took < 2000
    try:
        with generation_timer():
            raise RuntimeError("store down")
    except RuntimeError:
        pass
    assert sample("xds_generation_count") == count + 2
    assert sample("xds_generation_errors") == errors + 1
