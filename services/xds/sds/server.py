"""The standalone SDS server (spec §9.1, port 5677, TLS): `SecretDiscoveryService/StreamSecrets`
serving `identity_cert` and `mesh_ca` to clients that do not take their secrets over ADS.

The generated Envoy config takes both secrets over the ADS stream (see generator/security.py), so
Envoys configured by this control plane never need this server; it exists for SDS clients
configured by hand, and for parity with Kuma.

It is a thin stream over the ADS machinery: the same authentication and bounds (the stream is
bound at its first request to the dataplane its `authorization` metadata names, and counts
against the process's stream cap), the same SotW protocol (ads/sotw.py) and the same node
snapshots, whose Secrets the reconciler keeps current with the identity manager
(sds/identities.py): one identity per dataplane whichever port asks, rotated on the open stream.
An SDS stream does not speak for its node's metadata (its ADS stream does).

Differences from Kuma 0.3 (docs/compat.md): several resource names per stream, versions derived
from the content rather than random, and a secret that does not exist yet (the Dataplane is not
there, or its mesh has mTLS off) is waited for rather than refused. `FetchSecrets` and
`DeltaSecrets` answer UNIMPLEMENTED, as in Kuma.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from services.xds.ads.cache import Packed, SnapshotCache
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.server import StreamPolicy, listen, serve_stream
from services.xds.ads.sotw import SotwStream
from services.xds.ads.stream import StreamRefused
from services.xds.ads.types import SECRET
from services.xds.ads.wire import register
from services.xds.generator.security import IDENTITY_CERT, MESH_CA

SERVER_OPTIONS = [("grpc.so_reuseport", 0), ("grpc.keepalive_time_ms", 30_000)]
SECRETS = frozenset({IDENTITY_CERT, MESH_CA})
SDS_SERVICE = "envoy.service.secret.v3.SecretDiscoveryService"
# FetchSecrets is left out: gRPC answers it UNIMPLEMENTED, as DeltaSecrets's base method does.
SDS_METHODS = {
    "StreamSecrets": discovery_pb2.DiscoveryRequest,
    "DeltaSecrets": discovery_pb2.DeltaDiscoveryRequest,
}


class SdsStream(SotwStream):
    describes_node = False

    def on_request(self, request: Any) -> Any:
        if request.type_url not in ("", SECRET):
            raise StreamRefused(
                grpc.StatusCode.INVALID_ARGUMENT, f"only {SECRET} is served on this port"
            )
        self.check_request(SECRET, len(request.resource_names))  # bounds first, as on ADS
        self.check_name_lengths(request.resource_names)
        unknown = sorted(set(request.resource_names) - SECRETS)
        if unknown:
            raise StreamRefused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'unknown secret "{unknown[0][:256]}": only {IDENTITY_CERT} and {MESH_CA} '
                "are served",
            )
        if not request.resource_names and not request.response_nonce:
            return None  # spec §9.1: ignored
        request.type_url = SECRET
        return super().on_request(request)

    def ready(self, items: list[Packed]) -> bool:
        # Every name asked for, or nothing: an SDS client takes a response as the secrets.
        state = self.types[SECRET]
        return len(items) == len(state.names)


class SdsServicer(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(
        self, cache: SnapshotCache, callbacks: StreamCallbacks, policy: StreamPolicy
    ) -> None:
        self.cache = cache
        self.callbacks = callbacks
        self.policy = policy

    async def StreamSecrets(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> None:
        p = self.policy
        stream = SdsStream(self.cache, self.callbacks, context, auth=p.auth, limits=p.limits)
        await serve_stream(stream, p.slots, request_iterator)


async def start_sds_server(
    address: str,
    servicer: SdsServicer,
    cert_pem: bytes,
    key_pem: bytes,
    max_message_bytes: int = 4 * 1024 * 1024,
) -> tuple[grpc.aio.Server, int]:
    """Serve SDS with TLS on `address` (`host:port`, port 0 = any); returns (server, port)."""
    options = [*SERVER_OPTIONS, ("grpc.max_receive_message_length", max_message_bytes)]
    server = grpc.aio.server(options=options)
    register(server, servicer, SDS_SERVICE, SDS_METHODS)
    port = listen(server, address, (cert_pem, key_pem))
    await server.start()
    return server, port
