"""The xDS service's metrics: responses and confirmations are read from the streams' own
counters when scraped (and stay counted once a stream closes), delivery is observed once per
changed type and stream in milliseconds, and a closed stream leaves nothing behind (thousands
close at once when a peer goes away)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from prometheus_client import REGISTRY

from services.xds.ads.cache import NodeSnapshot, SnapshotCache
from services.xds.ads.counters import StreamCounters
from services.xds.ads.sotw import SotwStream
from services.xds.ads.types import CLUSTER, ENDPOINT
from services.xds.metrics import MetricsCallbacks, generation_timer

NODE = "default.web-1"


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_responses_and_confirmations_are_read_from_the_streams_and_outlive_them():
    metrics = MetricsCallbacks()
    sent = {"type_url": CLUSTER}
    acked = {"type_url": CLUSTER, "confirmation": "ACK"}
    nacked = {"type_url": ENDPOINT, "confirmation": "NACK"}
    before = (
        sample("xds_responses_sent", sent),
        sample("xds_requests_received", acked),
        sample("xds_requests_received", nacked),
        sample("xds_streams_active"),
    )
    one, two = StreamCounters(), StreamCounters()
    metrics.on_open("s1", NODE, None, one)
    metrics.on_open("s2", "default.db-1", None, two)
    assert sample("xds_streams_active") == before[3] + 2
    for counters in (one, two):
        counters.response(CLUSTER)
        counters.ack(CLUSTER)
    one.nack(ENDPOINT)
    after = (sample("xds_responses_sent", sent), sample("xds_requests_received", acked))
    assert after == (before[0] + 2, before[1] + 2)
    assert sample("xds_requests_received", nacked) == before[2] + 1

    for stream in ("s1", "s2"):
        metrics.on_close(stream)
        metrics.on_close(stream)  # closing twice is harmless
    assert sample("xds_streams_active") == before[3]
    assert metrics._live == {}
    # a counter never goes down: what closed streams counted stays counted
    assert sample("xds_responses_sent", sent) == before[0] + 2
    assert sample("xds_requests_received", acked) == before[1] + 2


def test_delivery_is_observed_once_per_change_and_type_in_milliseconds_and_not_after_a_nack():
    """A real SotW stream over a cache: the first response after a change noticed 500 ms ago
    carries it, its ACK is one delivery; a repeat of the same answer and its ACK are not; a
    NACKed change is no delivery, and a later ACK of the old config neither."""

    async def scenario() -> None:
        cache = SnapshotCache()
        metrics = MetricsCallbacks()
        stream = SotwStream(cache, metrics, context=None)
        requests: asyncio.Queue[Any] = asyncio.Queue()
        responses: asyncio.Queue[Any] = asyncio.Queue()

        async def feed() -> AsyncIterator[Any]:
            while True:
                yield await requests.get()

        async def write(response: Any) -> None:
            responses.put_nowait(response)

        def config(timeout: int) -> NodeSnapshot:
            cluster = cluster_pb2.Cluster(name="backend")
            cluster.connect_timeout.seconds = timeout
            return NodeSnapshot.build({CLUSTER: {"backend": cluster}})

        def confirm(response: Any, error: str = "") -> None:
            req = discovery_pb2.DiscoveryRequest(type_url=CLUSTER, response_nonce=response.nonce)
            if error:
                req.error_detail.message = error
            requests.put_nowait(req)

        first = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
        first.node.id = NODE
        requests.put_nowait(first)
        task = asyncio.create_task(stream.serve(feed(), write))
        count, total = sample("xds_delivery_count"), sample("xds_delivery_sum")

        cache.set(NODE, config(1))  # the first config: no change was noticed
        confirm(await responses.get())
        cache.set(NODE, config(2), time.monotonic() - 0.5)  # a change noticed 500 ms ago
        response = await responses.get()
        confirm(response)
        confirm(response)  # a repeated ACK is not another delivery
        await asyncio.sleep(0.05)
        assert sample("xds_delivery_count") == count + 1
        assert 500 <= sample("xds_delivery_sum") - total < 5000  # ms, not seconds

        cache.set(NODE, config(3), time.monotonic())
        confirm(await responses.get(), error="bad cluster")
        await asyncio.sleep(0.05)
        assert sample("xds_delivery_count") == count + 1
        assert stream.counters.nacked == {CLUSTER: 1} and stream.counters.acked == {CLUSTER: 2}
        task.cancel()

    asyncio.run(scenario())


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
