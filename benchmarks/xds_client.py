"""A light ADS client process for benchmarks: many SotW streams that ACK like Envoy.

    python -m benchmarks.xds_client ADDRESS FIRST COUNT MARKER_SECONDS [--secrets]

Opens streams for nodes `default.dp-FIRST` .. `default.dp-(FIRST+COUNT-1)`; each subscribes to
CDS and LDS (wildcard) and to EDS for the clusters it receives (and, with `--secrets`, to the
mTLS secrets `identity_cert` and `mesh_ca`), ACKing every response with its type's
subscription, as Envoy does. Prints `ready` once every stream has its first config (and its
identity), then waits; it records, per stream, the wall time of the ACK of the first CDS
response whose `backend` cluster has a health check with interval MARKER_SECONDS, and prints
them as JSON when its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def secret_names(response: discovery_pb2.DiscoveryResponse) -> set[str]:
    names = set()
    for any_msg in response.resources:
        secret = secret_pb2.Secret()
        any_msg.Unpack(secret)
        names.add(secret.name)
    return names


async def stream(
    stub, node_id: str, marker: int, ready: asyncio.Event, seen: dict, counter, secrets: bool
):
    queue: asyncio.Queue = asyncio.Queue()
    node = discovery_pb2.DiscoveryRequest().node
    node.id = node_id
    node.cluster = "bench"
    first = discovery_pb2.DiscoveryRequest(type_url=CDS)
    first.node.CopyFrom(node)
    await queue.put(first)
    await queue.put(discovery_pb2.DiscoveryRequest(type_url=LDS))
    if secrets:
        names = ["identity_cert", "mesh_ca"]
        await queue.put(discovery_pb2.DiscoveryRequest(type_url=SECRET, resource_names=names))

    async def requests():
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    # As Envoy does, every request of a type (ACKs included) carries the type's subscription:
    # empty for the wildcard CDS and LDS, the clusters' names for EDS.
    subscribed: dict[str, list[str]] = {SECRET: ["identity_cert", "mesh_ca"]}
    # Ready once the stream has its listeners and, in an mTLS mesh, its identity: a change
    # timed before identities are issued would be timed against the issuing as well.
    waiting = {LDS, SECRET} if secrets else {LDS}
    async for response in stub.StreamAggregatedResources(requests()):
        ack = discovery_pb2.DiscoveryRequest(
            type_url=response.type_url,
            version_info=response.version_info,
            response_nonce=response.nonce,
            resource_names=subscribed.get(response.type_url, []),
        )
        if response.type_url == CDS:
            names = []
            for any_msg in response.resources:
                cluster = cluster_pb2.Cluster()
                any_msg.Unpack(cluster)
                names.append(cluster.name)
                if (
                    cluster.name == "backend"
                    and cluster.health_checks
                    and cluster.health_checks[0].interval.seconds == marker
                    and node_id not in seen
                ):
                    seen[node_id] = time.time()
            # SotW: the EDS subscription follows CDS (sent as its own request).
            await queue.put(ack)
            subscribed[EDS] = sorted(names)
            await queue.put(discovery_pb2.DiscoveryRequest(type_url=EDS, resource_names=names))
        else:
            await queue.put(ack)
        if (
            waiting
            and response.type_url in waiting
            and (response.type_url != SECRET or "identity_cert" in secret_names(response))
        ):
            waiting.discard(response.type_url)
            if waiting:
                continue
            counter[0] += 1
            if counter[0] == counter[1]:
                ready.set()


async def main(address: str, first: int, count: int, marker: int, secrets: bool) -> None:
    channel = grpc.aio.insecure_channel(address)
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    ready = asyncio.Event()
    seen: dict[str, float] = {}
    counter = [0, count]
    tasks = [
        asyncio.create_task(stream(stub, f"default.dp-{i}", marker, ready, seen, counter, secrets))
        for i in range(first, first + count)
    ]
    await ready.wait()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print(json.dumps(seen), flush=True)
    for t in tasks:
        t.cancel()
    await channel.close()


if __name__ == "__main__":
    address, first, count, marker = sys.argv[1], *map(int, sys.argv[2:5])
    asyncio.run(main(address, first, count, marker, "--secrets" in sys.argv[5:]))
