"""The floor under xds_convergence: the same push through a bare grpc.aio ADS server.

    python -m benchmarks.grpc_floor [--sizes 1000,5000] [--clients 8]

The server here does the least a SotW server must: one stream task and queue per client, a
Cluster response on a change, an EDS response to the EDS request that follows, ACKs read and
dropped. No store, no generation, no versions, no callbacks. The clients are the same light
ADS clients (benchmarks.xds_client) on the same 2 cores, and the change is timed the same way:
from the push to each client's receipt of the new `backend` Cluster. What xds_convergence
measures above this (latency, and CPU seconds of the server process) is the control plane's
own cost. Writes benchmarks/results/grpc_floor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from benchmarks.xds_convergence import RESULTS, cpu_seconds, percentile, spawn
from services.xds.ads.server import SERVER_OPTIONS
from services.xds.ads.types import CLUSTER, ENDPOINT
from services.xds.generator import builders

CHANGE = object()


def open_stream(
    queues: list[asyncio.Queue[Any]], requests: AsyncIterator[Any]
) -> tuple[asyncio.Queue[Any], asyncio.Task[None]]:
    """A new stream's queue, where pushes land (added to `queues`), and the task putting its
    requests on it too: one loop serves both, as a stream task of the xDS server does."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    queues.append(queue)

    async def read() -> None:
        async for request in requests:
            queue.put_nowait(request)

    return queue, asyncio.create_task(read())


def packed(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


class Floor(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, endpoints: int) -> None:
        self.queues: list[asyncio.Queue[Any]] = []
        self.interval = 10
        local = builders.static_cluster("localhost:8080", "127.0.0.1", 8080)
        self.local = packed(local)
        self.assignment = packed(
            builders.load_assignment(
                "backend",
                (
                    builders.lb_endpoint(f"10.0.{i // 250}.{i % 250 + 1}", 8080, {})
                    for i in range(endpoints)
                ),
            )
        )

    def clusters(self) -> list[any_pb2.Any]:
        backend = cluster_pb2.Cluster(name="backend", type=cluster_pb2.Cluster.EDS)
        backend.health_checks.add().interval.seconds = self.interval
        return [packed(backend), self.local]

    async def StreamAggregatedResources(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        queue, reader = open_stream(self.queues, request_iterator)
        nonce = 0
        try:
            while True:
                item = await queue.get()
                nonce += 1
                if item is not CHANGE and item.response_nonce:
                    continue  # an ACK
                type_url = CLUSTER if item is CHANGE else item.type_url
                resources = {CLUSTER: self.clusters, ENDPOINT: lambda: [self.assignment]}
                yield discovery_pb2.DiscoveryResponse(
                    version_info=str(self.interval),
                    resources=resources.get(type_url, list)(),
                    type_url=type_url,
                    nonce=str(nonce),
                )
        finally:
            reader.cancel()


async def run_size(n: int, clients: int) -> dict[str, Any]:
    floor = Floor(endpoints=n // 10)  # as many `backend` endpoints as xds_convergence has
    server = grpc.aio.server(options=SERVER_OPTIONS)
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(floor, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    loop = asyncio.get_running_loop()
    marker, per = 7, n // clients
    procs = [
        spawn(
            [sys.executable, "-m", "benchmarks.xds_client", f"127.0.0.1:{port}"]
            + [str(k * per), str(per if k < clients - 1 else n - k * per), str(marker)]
        )
        for k in range(clients)
    ]
    for p in procs:
        assert p.stdout is not None
        assert (await loop.run_in_executor(None, p.stdout.readline)).strip() == "ready"
    await asyncio.sleep(2.0)
    cpu0 = cpu_seconds()
    pushed = time.time()
    floor.interval = marker
    for i, queue in enumerate(floor.queues):
        queue.put_nowait(CHANGE)
        if i % 50 == 49:
            await asyncio.sleep(0)  # as the reconciler does
    await asyncio.sleep(max(2.0, n / 500))
    cpu = cpu_seconds() - cpu0
    seen: dict[str, float] = {}
    for p in procs:
        out, _ = await loop.run_in_executor(None, p.communicate, "", 120)
        seen.update(json.loads(out.strip().splitlines()[-1])["seen"])
    await server.stop(grace=0.5)
    latencies = [(t - pushed) * 1000 for t in seen.values()]
    return {
        "dataplanes": n,
        "converged": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "cpu_seconds_per_change": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    rows = [asyncio.run(run_size(int(n), args.clients)) for n in args.sizes.split(",")]
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "rows": rows,
    }
    (RESULTS / "grpc_floor.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
