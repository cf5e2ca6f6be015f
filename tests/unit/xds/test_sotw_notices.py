"""A change notice answers only the types whose content changed: a node's snapshot that keeps a
type's answer (the same object, or one of equal content) sends nothing of that type."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.service.discovery.v3 import discovery_pb2

from services.xds.ads.cache import NodeSnapshot, Packer, SnapshotCache
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.sotw import SotwStream
from services.xds.ads.types import CLUSTER, LISTENER

NODE = "default.web-1"


def outbound(port: int) -> listener_pb2.Listener:
    listener = listener_pb2.Listener(name="outbound")
    listener.address.socket_address.port_value = port
    return listener


def snapshot(
    timeout: int, listener: listener_pb2.Listener, packer: Packer | None = None
) -> NodeSnapshot:
    cluster = cluster_pb2.Cluster(name="backend")
    cluster.connect_timeout.seconds = timeout
    return NodeSnapshot.build(
        {CLUSTER: {"backend": cluster}, LISTENER: {"outbound": listener}}, packer
    )


def test_a_notice_sends_only_the_changed_types() -> None:
    async def scenario() -> list[tuple[str, str]]:
        cache = SnapshotCache()
        stream = SotwStream(cache, StreamCallbacks(), context=None)
        requests: asyncio.Queue[Any] = asyncio.Queue()
        sent: list[tuple[str, str]] = []

        async def feed() -> AsyncIterator[Any]:
            while True:
                yield await requests.get()

        async def write(response: Any) -> None:
            sent.append((response.type_url, response.version_info))
            ack = discovery_pb2.DiscoveryRequest(
                type_url=response.type_url, response_nonce=response.nonce
            )
            requests.put_nowait(ack)

        async def consume() -> None:
            await stream.serve(feed(), write)

        async def settle() -> None:
            for _ in range(20):
                await asyncio.sleep(0)

        first = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
        first.node.id = NODE
        requests.put_nowait(first)
        requests.put_nowait(discovery_pb2.DiscoveryRequest(type_url=LISTENER))
        task = asyncio.create_task(consume())
        await settle()
        packer, listener = Packer(), outbound(80)
        one = snapshot(1, listener, packer)
        cache.set(NODE, one)
        await settle()
        two = snapshot(2, listener, packer)  # the cluster changes; the listener answer is kept
        assert two.of(LISTENER) is one.of(LISTENER)
        cache.set(NODE, two)
        await settle()
        cache.set(NODE, snapshot(2, outbound(80)))  # new objects, same content: nothing to send
        await settle()
        cache.set(NODE, snapshot(2, outbound(81)))  # the listener changes
        await settle()
        task.cancel()
        return sent

    sent = asyncio.run(scenario())
    assert [type_url for type_url, _ in sent] == [CLUSTER, LISTENER, CLUSTER, LISTENER]
    assert len({version for _, version in sent}) == 4
