"""The standalone SDS server (spec §9.1, port 5677, TLS): `SecretDiscoveryService/StreamSecrets`
serving `identity_cert` and `mesh_ca` to clients that do not take their secrets over ADS.

The generated Envoy config takes both secrets over the ADS stream (see generator/security.py), so
Envoys configured by this control plane never need this server; it exists for SDS clients
configured by hand, and for parity with Kuma. Differences from Kuma 0.3: several resource names
per stream are allowed, and the identity is rotated on the open stream (a new `identity_cert` is
pushed when `certificateRotationPercent` of its lifetime has passed). `FetchSecrets` and
`DeltaSecrets` answer UNIMPLEMENTED, as in Kuma.

Authentication and bounds are those of ADS (services/xds/auth.py, ads/stream.py): the stream is
bound at its first request to the dataplane its `authorization` metadata names (or, with
same-host trust, to the node a local caller claims), for both secrets; it counts against the
process's stream cap.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2

from kuma import ca as kca
from kuma.errors import KumaError, NotFoundError
from kuma.resources.registry import DATAPLANE
from kuma.store.base import ResourceStore
from services.xds.ads.server import StreamPolicy, listen
from services.xds.ads.stream import END, Inbox, Slot, StreamRefused, claimed_node
from services.xds.ads.types import SECRET
from services.xds.auth import Principal, StreamAuthenticator
from services.xds.generator.security import IDENTITY_CERT, MESH_CA
from services.xds.sds.identities import Identity, issue_identity, trust_bundle

log = logging.getLogger("kuma.sds")

_ROTATE = object()
SERVER_OPTIONS = [("grpc.so_reuseport", 0), ("grpc.keepalive_time_ms", 30_000)]


class SdsServicer(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(
        self,
        store: ResourceStore,
        authority: kca.CertificateAuthority,
        auth: StreamAuthenticator,
        *,
        lifetime: float,
        rotation_percent: int,
        policy: StreamPolicy | None = None,
    ) -> None:
        self.store = store
        self.authority = authority
        self.auth = auth
        self.policy = policy or StreamPolicy(auth=auth)
        self.lifetime = lifetime
        self.rotation_percent = rotation_percent

    async def StreamSecrets(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> None:
        inbox = Inbox(self.policy.limits.queue_size)
        slot = self.policy.slots.take(inbox)
        if slot is None:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this control plane serves at most {self.policy.slots.limit} streams per process",
            )
            return
        try:
            await self._serve(request_iterator, context, inbox, slot)
        except StreamRefused as exc:
            await context.abort(exc.code, exc.message)
        finally:
            slot.give_back()

    async def _serve(
        self, request_iterator: AsyncIterator[Any], context: Any, inbox: Inbox, slot: Slot
    ) -> None:
        limits = self.policy.limits

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await inbox.put(request)
            finally:
                inbox.end()

        reader = asyncio.create_task(read())
        nonces = itertools.count(1)
        node: Principal | None = None
        names: list[str] = []
        sent_nonce = ""
        identity: Identity | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                timeout: float | None = limits.first_request_timeout if node is None else None
                if identity is not None and IDENTITY_CERT in names:
                    timeout = max(0.0, identity.rotate_at - time.time())
                try:
                    item = await asyncio.wait_for(inbox.get(), timeout)
                except TimeoutError:
                    if node is None:
                        raise StreamRefused(
                            grpc.StatusCode.DEADLINE_EXCEEDED,
                            "no request within the first-request timeout",
                        ) from None
                    item = _ROTATE
                if item is END:
                    return
                if item is _ROTATE:
                    identity = None
                else:
                    request: Any = item
                    node = await self._bind(node, request, context)
                    slot.bound()
                    inbox.widen()
                    if len(request.resource_names) > limits.names_per_request:
                        raise StreamRefused(
                            grpc.StatusCode.RESOURCE_EXHAUSTED, "too many resource names"
                        )
                    if request.response_nonce and request.response_nonce == sent_nonce:
                        if request.HasField("error_detail"):
                            log.warning(
                                "%s rejected secrets: %s", node, request.error_detail.message
                            )
                        continue  # ACK (or NACK): nothing to send until something changes
                    if not request.resource_names:
                        continue  # spec §9.1: ignored
                    names = sorted(set(request.resource_names))
                assert node is not None
                try:
                    resources, identity = await loop.run_in_executor(
                        None, self._secrets, node, names, identity
                    )
                except NotFoundError as exc:
                    raise StreamRefused(grpc.StatusCode.NOT_FOUND, str(exc)) from None
                except (KumaError, ValueError) as exc:
                    raise StreamRefused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
                sent_nonce = str(next(nonces))
                await context.write(
                    discovery_pb2.DiscoveryResponse(
                        version_info=uuid.uuid4().hex,
                        type_url=SECRET,
                        nonce=sent_nonce,
                        resources=resources,
                    )
                )
        finally:
            reader.cancel()

    async def _bind(self, node: Principal | None, request: Any, context: Any) -> Principal:
        """As on ADS: the first request binds the stream to the dataplane its credential names;
        a later request naming another node is refused."""
        node_id = claimed_node(request, node.node_id if node is not None else None)
        if node is not None:
            return node
        return await self.auth.bind(node_id, context)

    def _secrets(
        self, node: Principal, names: list[str], identity: Identity | None
    ) -> tuple[list[any_pb2.Any], Identity | None]:
        """Runs in a thread. The stream was bound to `node` by its credential."""
        mesh, name = node.mesh, node.name
        out = []
        for resource in names:
            if resource == MESH_CA:
                secret = trust_bundle(self.authority, mesh)
            elif resource == IDENTITY_CERT:
                if identity is None:
                    try:
                        dataplane = self.store.get(DATAPLANE, mesh, name)
                    except NotFoundError:
                        raise NotFoundError(DATAPLANE, mesh, name) from None
                    identity = issue_identity(
                        self.authority,
                        mesh,
                        dataplane.spec.service(),
                        self.lifetime,
                        self.rotation_percent,
                    )
                secret = identity.secret
            else:
                raise ValueError(
                    f'unknown secret "{resource}": only {IDENTITY_CERT} and {MESH_CA} are served'
                )
            packed = any_pb2.Any()
            packed.Pack(secret)
            out.append(packed)
        return out, identity


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
    sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(servicer, server)
    port = listen(server, address, (cert_pem, key_pem))
    await server.start()
    return server, port
