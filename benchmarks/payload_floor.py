"""The floor of a change kind's own payload: a bare grpc.aio ADS server that sends every stream
the resources the xDS engine sends it for that change, and does nothing else.

    python -m benchmarks.payload_floor [--dataplanes 1000] [--kinds healthcheck,...]
                                       [--changes 4] [--clients 8]

benchmarks.grpc_floor pushes one small Cluster response, the same for every stream: the floor of
a change whose answer is one object shared by every node (a HealthCheck). A TrafficLog,
TrafficRoute or TrafficPermission change gives every dataplane a listener of its own, and a
Dataplane change every node a new EDS answer, so each stream gets a body of its own, often
several kilobytes: gRPC's own cost of delivering those is above that floor, whatever the control
plane does. This is the floor for them.

Every state the kind's changes go through is generated first, in this process (xds_generate's
World, as xds_protocol does), and each node's answer per type kept as its `Any` messages and its
version. Then the server does the least a SotW server must to deliver them: one task and queue
per stream; on a change, one response for each type the stream subscribed to whose version
changed, with the node's resources; a request without a nonce (a subscription) answered with
the node's current resources; ACKs read and dropped. The light clients (benchmarks.xds_client
--record) are xds_changes's, and a change is timed as there: from the push to the last response
each stream received, with the CPU seconds of this process. What was built is frozen out of the
collector first, as the xDS service freezes what its passes built.
Writes benchmarks/results/payload_floor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2

from benchmarks.change_kinds import KINDS
from benchmarks.grpc_floor import open_stream
from benchmarks.xds_convergence import (
    change_rows,
    cpu_seconds,
    recording_clients,
    response_times,
    settle_seconds,
    write_results,
)
from benchmarks.xds_generate import World
from services.xds.ads.cache import NodeSnapshot
from services.xds.ads.server import SERVER_OPTIONS
from services.xds.ads.types import ORDER

States = list[dict[str, NodeSnapshot]]


def states(kind: str, n: int, changes: int) -> States:
    """Every node's snapshot before the changes, then after each one."""
    world = World(kind, n)
    try:
        out = [world.snapshots()]
        for k in range(changes):
            for op, resource in world.kind.change(k):
                world.apply(op, resource)
            world.reconcile()
            out.append(world.snapshots())
        return out
    finally:
        world.close()


@dataclass(frozen=True, slots=True)
class Answer:
    version: str
    resources: tuple[any_pb2.Any, ...]


Answers = dict[str, dict[str, Answer]]  # node id -> type URL -> answer


def answers_of(all_states: States) -> list[Answers]:
    """Per state, every node's answer of every type; one `Answer` per answer object (nodes and
    states share them as the engine does)."""
    made: dict[int, Answer] = {}
    out = []
    for state in all_states:
        nodes: Answers = {}
        for node_id, snapshot in state.items():
            by_type = {}
            for url in ORDER:
                answer = snapshot.of(url)
                if id(answer) not in made:  # all_states keeps every answer alive meanwhile
                    items, version = answer.selection(None)
                    made[id(answer)] = Answer(version, tuple(p.any for p in items))
                by_type[url] = made[id(answer)]
            nodes[node_id] = by_type
        out.append(nodes)
    return out


class PayloadFloor(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, answers: list[Answers]) -> None:
        self.answers = answers
        self.queues: list[asyncio.Queue[Any]] = []

    async def StreamAggregatedResources(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        queue, reader = open_stream(self.queues, request_iterator)
        node, at, subscribed, nonce = "", 0, set(), 0
        try:
            while True:
                item = await queue.get()
                if isinstance(item, int):  # a change: the state to move to
                    was, now = self.answers[at][node], self.answers[item][node]
                    at = item
                    urls = [u for u in ORDER if was[u].version != now[u].version]
                    urls = [u for u in urls if u in subscribed]
                elif item.response_nonce:
                    continue  # an ACK
                else:
                    node = node or item.node.id
                    subscribed.add(item.type_url)
                    urls = [item.type_url]
                for url in urls:
                    nonce += 1
                    answer = self.answers[at][node][url]
                    yield discovery_pb2.DiscoveryResponse(
                        version_info=answer.version,
                        resources=answer.resources,
                        type_url=url,
                        nonce=str(nonce),
                    )
        finally:
            reader.cancel()


async def run(kind: str, n: int, changes: int, clients: int, settle: float) -> dict[str, Any]:
    """`changes` changes of `kind` pushed to `n` light clients in `clients` processes, `settle`
    seconds apart: their medians (p99_ms, cpu_s) and every change's row."""
    floor = PayloadFloor(answers_of(states(kind, n, changes)))
    gc.collect()
    gc.freeze()
    server = grpc.aio.server(options=SERVER_OPTIONS)
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(floor, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    procs: list[Any] = []
    try:
        address = f"127.0.0.1:{port}"
        procs = await recording_clients(address, n, clients, KINDS[kind].mtls)
        await asyncio.sleep(settle + 2.0)  # as xds_changes waits before its first change
        marks = []
        for k in range(1, changes + 1):
            cpu0, pushed = cpu_seconds(), time.time()
            for i, queue in enumerate(floor.queues):
                queue.put_nowait(k)
                if i % 50 == 49:
                    await asyncio.sleep(0)  # as the reconciler does
            await asyncio.sleep(settle)
            marks.append((pushed, cpu_seconds() - cpu0))
        times = await response_times(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        await server.stop(grace=0.5)
        gc.unfreeze()
    rows = [r for r in change_rows(marks, times) if r["p99_ms"] is not None]
    return {
        "kind": kind,
        "touched": statistics.median(r["touched"] for r in rows),
        "p99_ms": statistics.median(r["p99_ms"] for r in rows),
        "cpu_s": round(statistics.median(r["cpu_s"] for r in rows), 3),
        "changes": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataplanes", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    n, rows = args.dataplanes, []
    for kind in args.kinds.split(","):
        row = asyncio.run(run(kind, n, args.changes, args.clients, settle_seconds(n)))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "changes"}), flush=True)
    write_results("payload_floor", dataplanes=n, changes=args.changes, rows=rows)


if __name__ == "__main__":
    main()
