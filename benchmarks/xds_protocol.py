"""The ADS protocol alone: what the xDS server's streams cost over the bare gRPC floor, without
generation.

    python -m benchmarks.xds_protocol [--dataplanes 1000] [--kinds healthcheck,...]
                                      [--changes 10] [--clients 8]

For each change kind (benchmarks.change_kinds), every state the kind's changes go through is
generated first, in this process (benchmarks.xds_generate's World), and kept. Then the
product's ADS server (ads.server.start_ads_server over a SnapshotCache, no auth) serves them to
N light clients: each change sets every node's prebuilt snapshot, as the reconciler publishes
them, 50 nodes between yields. Right before, the floor (benchmarks.grpc_floor's server) pushes
as many changes to the same number of clients, and so does the payload floor
(benchmarks.payload_floor's server: the same states' resources, and nothing else). All run on
this process's asyncio loop, with what the clients' connection made collected and frozen as
the xDS service's quiet collector does; the figure is that loop's thread CPU seconds per
change, the median over the changes (gRPC's own threads do the same work for all, and are left
out), with the responses each stream received per change.

What xds_changes measures above this ratio is generation and the reconciler's pass; what this
measures above 1 is the stream protocol: binding, versions, per-type state, nonces, counters.
Writes benchmarks/results/xds_protocol.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc

from benchmarks.change_kinds import KINDS
from benchmarks.grpc_floor import CHANGE, Floor
from benchmarks.payload_floor import PayloadFloor, States, answers_of, states
from benchmarks.xds_convergence import (
    recording_clients,
    response_times,
    settle_seconds,
    write_results,
)
from services.xds.ads.cache import SnapshotCache
from services.xds.ads.server import SERVER_OPTIONS, start_ads_server


@dataclass(frozen=True)
class Setup:
    dataplanes: int
    clients: int  # processes
    settle: float  # seconds per change


async def clients(port: int, n: int, count: int, secrets: bool) -> list[Any]:
    procs = await recording_clients(f"127.0.0.1:{port}", n, count, secrets)
    await asyncio.sleep(2.0)
    # What the xDS service's quiet collector does after a connection storm (services/xds/
    # quiet_gc.py): collect, and freeze what survived, so that no full collection of every
    # stream's objects lands in a change. The floor is given the same.
    gc.collect()
    gc.freeze()
    return procs


async def measure(
    push: Callable[[int], Awaitable[None]], changes: int, settle: float
) -> tuple[list[float], list[float]]:
    """(loop-thread CPU seconds of each change, the wall time each change was pushed)."""
    cpus, pushed = [], []
    for k in range(changes):
        cpu0 = time.thread_time()
        pushed.append(time.time())
        await push(k)
        await asyncio.sleep(settle)
        cpus.append(time.thread_time() - cpu0)
    return cpus, pushed


async def finish(procs: list[Any], pushed: list[float], n: int) -> float:
    """Close the clients; the responses per stream per change."""
    times = await response_times(procs)
    received = sum(1 for ts in times.values() for t in ts if t >= pushed[0])
    return received / n / len(pushed)


async def pushed_to_clients(
    port: int, push: Callable[[int], Awaitable[None]], changes: int, secrets: bool, setup: Setup
) -> dict[str, Any]:
    """Connect the clients to `port`, `push` each change, and the figures of the changes."""
    procs = await clients(port, setup.dataplanes, setup.clients, secrets)
    cpus, pushed = await measure(push, changes, setup.settle)
    per_stream = await finish(procs, pushed, setup.dataplanes)
    return {"cpu_s": statistics.median(cpus), "responses_per_stream": round(per_stream, 2)}


async def run_floor_server(
    floor: Floor | PayloadFloor,
    item: Callable[[int], object],
    changes: int,
    secrets: bool,
    setup: Setup,
) -> dict[str, Any]:
    """A floor's server on this loop: change k puts `item(k)` on every stream's queue."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(floor, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def push(k: int) -> None:
        pushed = item(k)
        for i, queue in enumerate(floor.queues):
            queue.put_nowait(pushed)
            if i % 50 == 49:
                await asyncio.sleep(0)

    try:
        return await pushed_to_clients(port, push, changes, secrets, setup)
    finally:
        await server.stop(grace=0.5)


async def run_floor(changes: int, setup: Setup) -> dict[str, Any]:
    floor = Floor(endpoints=setup.dataplanes // 10)

    def item(k: int) -> object:
        floor.interval = 20 + k
        return CHANGE

    return await run_floor_server(floor, item, changes, False, setup)


async def run_payload_floor(kind: str, all_states: States, setup: Setup) -> dict[str, Any]:
    """benchmarks.payload_floor's server: the same states' resources, nothing else."""
    floor = PayloadFloor(answers_of(all_states))
    changes = len(all_states) - 1
    return await run_floor_server(floor, lambda k: k + 1, changes, KINDS[kind].mtls, setup)


async def run_protocol(kind: str, all_states: States, setup: Setup) -> dict[str, Any]:
    cache = SnapshotCache()
    for node_id, snapshot in all_states[0].items():
        cache.set(node_id, snapshot)
    server, port = await start_ads_server("127.0.0.1:0", cache)

    async def push(k: int) -> None:
        noticed = time.monotonic()
        for i, (node_id, snapshot) in enumerate(all_states[k + 1].items()):
            cache.set(node_id, snapshot, noticed)
            if i % 50 == 49:
                await asyncio.sleep(0)

    try:
        return await pushed_to_clients(port, push, len(all_states) - 1, KINDS[kind].mtls, setup)
    finally:
        await server.stop(grace=0.5)


async def run_kind(kind: str, n: int, changes: int, count: int) -> dict[str, Any]:
    setup = Setup(n, count, settle_seconds(n))
    all_states = states(kind, n, changes)
    floor = await run_floor(changes, setup)
    payload = await run_payload_floor(kind, all_states, setup)
    protocol = await run_protocol(kind, all_states, setup)
    return {
        "kind": kind,
        "cpu_s": round(protocol["cpu_s"], 4),
        "floor_cpu_s": round(floor["cpu_s"], 4),
        "cpu_x_floor": round(protocol["cpu_s"] / floor["cpu_s"], 2),
        "payload_cpu_s": round(payload["cpu_s"], 4),
        "cpu_x_payload": round(protocol["cpu_s"] / payload["cpu_s"], 2),
        "responses_per_stream": protocol["responses_per_stream"],
        "floor_responses_per_stream": floor["responses_per_stream"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataplanes", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    rows = []
    for kind in args.kinds.split(","):
        row = asyncio.run(run_kind(kind, args.dataplanes, args.changes, args.clients))
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results("xds_protocol", dataplanes=args.dataplanes, changes=args.changes, rows=rows)


if __name__ == "__main__":
    main()
