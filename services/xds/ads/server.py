"""The gRPC shell: the ADS servicer on one asyncio loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from services.xds.ads.cache import SnapshotCache
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.delta import DeltaStream
from services.xds.ads.sotw import SotwStream
from services.xds.ads.stream import (
    Inbox,
    Slot,
    Stream,
    StreamLimits,
    StreamRefused,
    StreamSlots,
    Write,
)
from services.xds.ads.wire import register
from services.xds.auth import StreamAuthenticator

ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
ADS_METHODS = {
    "StreamAggregatedResources": discovery_pb2.DiscoveryRequest,
    "DeltaAggregatedResources": discovery_pb2.DeltaDiscoveryRequest,
}

# gRPC's default limits refuse about 15% of 3,000 streams opened at once (envoy-notes.md), and
# cancel a stream the application has not taken up within 30 s: in a storm of thousands of
# Envoys connecting to an mTLS mesh (each identity is signed on arrival) the last ones waited
# longer and were cancelled. Let them wait instead.
SERVER_OPTIONS = [
    # gRPC sets SO_REUSEPORT by default: a second process (of the same user) could then bind
    # the busy port and take part of the sidecars' connections. A busy port is an error.
    ("grpc.so_reuseport", 0),
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 20_000),
    ("grpc.server_max_unrequested_time_in_server", 600),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [*SERVER_OPTIONS, ("grpc.max_receive_message_length", max_message_bytes)]


@dataclass
class StreamPolicy:
    """What every stream of a server is held to: who it may be, and how much it may ask."""

    auth: StreamAuthenticator | None = None
    limits: StreamLimits = StreamLimits()
    slots: StreamSlots = field(default_factory=lambda: StreamSlots(10_000))


class Served(Protocol):
    """A stream `serve_stream` can run: ADS, SDS and MADS ones."""

    context: Any
    inbox: Inbox
    slot: Slot | None

    async def serve(self, requests: AsyncIterator[Any], write: Write) -> None: ...


async def serve_stream(stream: Served, slots: StreamSlots, requests: AsyncIterator[Any]) -> None:
    """Run one stream to its end. Responses go out through `context.write`: gRPC's driver of a
    handler written as an async generator keeps the last response it sent alive until the next,
    so each idle stream held a copy of its last EDS response (30 kB per stream at 5,000
    dataplanes, measured)."""
    context = stream.context
    stream.slot = slots.take(stream.inbox)
    if stream.slot is None:
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"this control plane serves at most {slots.limit} streams per process",
        )
    try:
        await stream.serve(requests, context.write)
    except StreamRefused as exc:
        await context.abort(exc.code, exc.message)
    finally:
        if stream.slot is not None:
            stream.slot.give_back()


class AdsServicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(
        self,
        cache: SnapshotCache,
        callbacks: StreamCallbacks | None = None,
        policy: StreamPolicy | None = None,
    ):
        self.cache = cache
        self.callbacks = callbacks or StreamCallbacks()
        self.policy = policy or StreamPolicy()

    def _stream(self, kind: type[Stream], context: Any) -> Stream:
        p = self.policy
        return kind(self.cache, self.callbacks, context, auth=p.auth, limits=p.limits)

    async def StreamAggregatedResources(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> None:
        stream = self._stream(SotwStream, context)
        await serve_stream(stream, self.policy.slots, request_iterator)

    async def DeltaAggregatedResources(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> None:
        stream = self._stream(DeltaStream, context)
        await serve_stream(stream, self.policy.slots, request_iterator)


def listen(server: grpc.aio.Server, address: str, tls: tuple[bytes, bytes] | None) -> int:
    """Bind `address`, with TLS when `tls` is (cert chain PEM, key PEM); the port bound."""
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        cert_pem, key_pem = tls
        credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


async def start_ads_server(
    address: str,
    cache: SnapshotCache,
    callbacks: StreamCallbacks | None = None,
    *,
    policy: StreamPolicy | None = None,
    tls: tuple[bytes, bytes] | None = None,
    max_message_bytes: int = 4 * 1024 * 1024,
) -> tuple[grpc.aio.Server, int]:
    """Start serving ADS on `address` (`host:port`, port 0 = any); returns (server, port).
    Without `policy.auth` every stream is taken at its word (tests of the protocol alone)."""
    server = grpc.aio.server(options=server_options(max_message_bytes))
    register(server, AdsServicer(cache, callbacks, policy), ADS_SERVICE, ADS_METHODS)
    port = listen(server, address, tls)
    await server.start()
    return server, port
