"""A light ADS client process for benchmarks: many SotW streams that ACK like Envoy.

    python -m benchmarks.xds_client ADDRESS FIRST COUNT MARKER_SECONDS [--secrets]
        [--ca-cert FILE] [--tokens FILE] [--per-channel K] [--go]

Opens streams for nodes `default.dp-FIRST` .. `default.dp-(FIRST+COUNT-1)`; each subscribes to
CDS and LDS (wildcard), to EDS for the clusters of type EDS it receives, to RDS for the route
configurations its listeners name (and, with `--secrets`, to the mTLS secrets `identity_cert` and
`mesh_ca`), ACKing every response with its type's subscription, as Envoy does. A stream has its
full config once it has ACKed CDS, EDS, LDS and RDS (the last two only when subscribed) and, with
`--secrets`, holds its identity. Prints `ready` once every stream has its full config, then
waits; it records, per stream, the wall time of the ACK of the first CDS response whose
`backend` cluster has a health check with interval MARKER_SECONDS. When its stdin closes it
prints one JSON line: `seen` (those times), `started` and `done` (per node: when its first call
was made, when it had its full config), `errors` (gRPC status codes of failed calls, each
retried after half a second, as Envoy retries) and `cpu_seconds` (this process's from opening
its streams to the last full config). It reports when its stdin closes, ready or not.

Connections, as Envoy makes them:
- `--per-channel K`: a channel, with its own connection, for every K streams (1: one each, as
  every Envoy has its own; gRPC would otherwise share one connection between channels of
  identical arguments); 0 (the default): one channel for all streams of this process.
- `--ca-cert FILE`: TLS, trusting that certificate; `--tokens FILE`: a JSON object of dataplane
  name to dataplane token, sent as `authorization: Bearer <token>` on each stream.
- `--go`: print `armed`, then wait for a line on stdin before opening anything.
- `--record`: once every stream has its full config, record the wall time of every response
  each stream receives; reported as `times` (node -> times), for changes of any kind
  (benchmarks.xds_changes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
SECRET_NAMES = ["identity_cert", "mesh_ca"]
HCM = "envoy.filters.network.http_connection_manager"
RETRY_SECONDS = 0.5
recording = asyncio.Event()  # set once every stream of this process has its full config


def secret_names(response: discovery_pb2.DiscoveryResponse) -> set[str]:
    names = set()
    for any_msg in response.resources:
        secret = secret_pb2.Secret()
        any_msg.Unpack(secret)
        names.add(secret.name)
    return names


def route_names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    """The route configurations the listeners' HTTP connection managers take over RDS."""
    names = set()
    for any_msg in response.resources:
        listener = listener_pb2.Listener()
        any_msg.Unpack(listener)
        for chain in listener.filter_chains:
            for f in chain.filters:
                if f.name == HCM and f.HasField("typed_config"):
                    manager = hcm_pb2.HttpConnectionManager()
                    f.typed_config.Unpack(manager)
                    if manager.HasField("rds"):
                        names.add(manager.rds.route_config_name)
    return sorted(names)


class Stream:
    """One node's SotW stream, reopened (with its subscriptions) after a failed call."""

    def __init__(
        self,
        node_id: str,
        marker: int,
        secrets: bool,
        seen: dict,
        on_full: Callable[[], None],
        times: list[float] | None = None,
    ) -> None:
        self.node_id = node_id
        self.times = times  # every response's arrival, while recording
        self.marker = marker
        self.secrets = secrets
        self.seen = seen
        self.on_full = on_full
        self.full = False
        # As Envoy does, every request of a type (ACKs included) carries the type's
        # subscription: empty for the wildcard CDS and LDS, names for the others.
        self.subscribed: dict[str, list[str]] = {}
        self.missing: set[str] = set()

    def first_requests(self) -> list[discovery_pb2.DiscoveryRequest]:
        first = discovery_pb2.DiscoveryRequest(type_url=CDS)
        first.node.id = self.node_id
        first.node.cluster = "bench"
        out = [first, discovery_pb2.DiscoveryRequest(type_url=LDS)]
        self.subscribed = {CDS: [], LDS: []}
        self.missing = {CDS, LDS}
        if self.secrets:
            self.subscribed[SECRET] = SECRET_NAMES
            self.missing.add(SECRET)
            out.append(discovery_pb2.DiscoveryRequest(type_url=SECRET, resource_names=SECRET_NAMES))
        return out

    def subscribe(self, queue: asyncio.Queue, type_url: str, names: list[str]) -> None:
        """SotW: EDS follows CDS and RDS follows LDS, each as its own request."""
        if names == self.subscribed.get(type_url):
            return
        if names:
            self.subscribed[type_url] = names
            self.missing.add(type_url)
            request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=names)
            queue.put_nowait(request)
        elif type_url in self.subscribed:
            # Envoy never sends an empty EDS/RDS subscription (it would mean "everything").
            del self.subscribed[type_url]
            self.missing.discard(type_url)

    def clusters(self, response: discovery_pb2.DiscoveryResponse) -> list[str]:
        """The EDS clusters of a CDS response; records the marker's arrival."""
        names = []
        for any_msg in response.resources:
            cluster = cluster_pb2.Cluster()
            any_msg.Unpack(cluster)
            if cluster.type == cluster_pb2.Cluster.EDS:
                names.append(cluster.name)
            if (
                cluster.name == "backend"
                and cluster.health_checks
                and cluster.health_checks[0].interval.seconds == self.marker
                and self.node_id not in self.seen
            ):
                self.seen[self.node_id] = time.time()
        return sorted(names)

    async def run(self, stub, metadata: tuple) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        for request in self.first_requests():
            queue.put_nowait(request)

        async def requests():
            while True:
                yield await queue.get()

        call = stub.StreamAggregatedResources(requests(), metadata=metadata or None)
        async for response in call:
            if self.times is not None and recording.is_set():
                self.times.append(time.time())
            type_url = response.type_url
            ack = discovery_pb2.DiscoveryRequest(
                type_url=type_url,
                version_info=response.version_info,
                response_nonce=response.nonce,
                resource_names=self.subscribed.get(type_url, []),
            )
            queue.put_nowait(ack)
            if type_url == CDS:
                self.subscribe(queue, EDS, self.clusters(response))
            elif type_url == LDS:
                self.subscribe(queue, RDS, route_names(response))
            if type_url == SECRET and "identity_cert" not in secret_names(response):
                continue
            if type_url in self.subscribed:
                self.missing.discard(type_url)
            if not self.missing and not self.full:
                self.full = True
                self.on_full()


async def keep_open(stream: Stream, stub, metadata: tuple, errors: Counter) -> None:
    while True:
        try:
            await stream.run(stub, metadata)
            errors["EOF"] += 1
        except grpc.aio.AioRpcError as exc:
            errors[exc.code().name] += 1
        await asyncio.sleep(RETRY_SECONDS)


def make_channel(address: str, ca_pem: bytes | None, own_connection: bool) -> grpc.aio.Channel:
    options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
    if ca_pem is None:
        return grpc.aio.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    return grpc.aio.secure_channel(address, credentials, options=options)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    ca_pem = Path(args.ca_cert).read_bytes() if args.ca_cert else None
    tokens: dict[str, str] = json.loads(Path(args.tokens).read_text()) if args.tokens else {}
    if args.go:
        print("armed", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
    cpu0 = cpu_seconds()
    ready = asyncio.Event()
    seen: dict[str, float] = {}
    started: dict[str, float] = {}
    done: dict[str, float] = {}
    errors: Counter = Counter()
    times: dict[str, list[float]] = {}
    channels: list[grpc.aio.Channel] = []
    tasks = []
    for k, i in enumerate(range(args.first, args.first + args.count)):
        node_id = f"default.dp-{i}"
        if not channels or (args.per_channel and k % args.per_channel == 0):
            channels.append(make_channel(args.address, ca_pem, args.per_channel > 0))
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channels[-1])
        token = tokens.get(f"dp-{i}")
        metadata = (("authorization", f"Bearer {token}"),) if token else ()

        def on_full(node_id: str = node_id) -> None:
            done[node_id] = time.time()
            if len(done) == args.count:
                ready.set()

        if args.record:
            times[node_id] = []
        stream = Stream(node_id, args.marker, args.secrets, seen, on_full, times.get(node_id))
        started[node_id] = time.time()
        tasks.append(asyncio.create_task(keep_open(stream, stub, metadata, errors)))
    cpu = [0.0]

    async def announce() -> None:
        await ready.wait()
        cpu[0] = cpu_seconds() - cpu0
        recording.set()
        print("ready", flush=True)

    # The report comes when stdin closes, ready or not (a harness that gave up, or died).
    announcer = asyncio.create_task(announce())
    await loop.run_in_executor(None, sys.stdin.read)
    announcer.cancel()
    out = {
        "seen": seen,
        "started": started,
        "done": done,
        "errors": dict(errors),
        "channels": len(channels),
        "cpu_seconds": round(cpu[0] or cpu_seconds() - cpu0, 3),
    }
    if args.record:
        out["times"] = times
    print(json.dumps(out), flush=True)
    for t in tasks:
        t.cancel()
    for channel in channels:
        await channel.close()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.xds_client")
    parser.add_argument("address")
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("marker", type=int)
    parser.add_argument("--secrets", action="store_true")
    parser.add_argument("--ca-cert", default="")
    parser.add_argument("--tokens", default="")
    parser.add_argument("--per-channel", type=int, default=0)
    parser.add_argument("--go", action="store_true")
    parser.add_argument("--record", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
