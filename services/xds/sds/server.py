"""The standalone SDS server (spec §9.1, port 5677, TLS): `SecretDiscoveryService/StreamSecrets`
serving `identity_cert` and `mesh_ca` to clients that do not take their secrets over ADS.

The generated Envoy config takes both secrets over the ADS stream (see generator/security.py), so
Envoys configured by this control plane never need this server; it exists for SDS clients
configured by hand, and for parity with Kuma. Differences from Kuma 0.3: several resource names
per stream are allowed, and the identity is rotated on the open stream (a new `identity_cert` is
pushed when `certificateRotationPercent` of its lifetime has passed). `FetchSecrets` and
`DeltaSecrets` answer UNIMPLEMENTED, as in Kuma.

Authentication is the same as over ADS: the `authorization` metadata must carry a dataplane token
naming the node's mesh and name (unless token verification is off); `mesh_ca` needs none.
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
from kuma.dataplane_auth import DataplaneAuthenticator
from kuma.errors import KumaError, NotFoundError, UnauthorizedError
from kuma.resources.registry import DATAPLANE
from kuma.store.base import ResourceStore
from services.xds.ads.stream import authorization
from services.xds.ads.types import SECRET
from services.xds.generator.security import IDENTITY_CERT, MESH_CA
from services.xds.nodes import split_node_id
from services.xds.sds.identities import (
    Identity,
    bearer,
    issue_identity,
    trust_bundle,
)

log = logging.getLogger("kuma.sds")

_END = object()
_ROTATE = object()
SERVER_OPTIONS = [("grpc.so_reuseport", 0), ("grpc.keepalive_time_ms", 30_000)]


class SdsServicer(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(
        self,
        store: ResourceStore,
        authority: kca.CertificateAuthority,
        authenticator: DataplaneAuthenticator,
        *,
        lifetime: float,
        rotation_percent: int,
    ) -> None:
        self.store = store
        self.authority = authority
        self.authenticator = authenticator
        self.lifetime = lifetime
        self.rotation_percent = rotation_percent

    async def StreamSecrets(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        token = bearer(authorization(context))
        queue: asyncio.Queue[object] = asyncio.Queue()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    queue.put_nowait(request)
            finally:
                queue.put_nowait(_END)

        reader = asyncio.create_task(read())
        nonces = itertools.count(1)
        node: tuple[str, str] | None = None
        names: list[str] = []
        sent_nonce = ""
        identity: Identity | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                timeout = None
                if identity is not None and IDENTITY_CERT in names:
                    timeout = max(0.0, identity.rotate_at - time.time())
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    item = _ROTATE
                if item is _END:
                    return
                if item is _ROTATE:
                    identity = None
                else:
                    request: Any = item
                    if node is None:
                        node = split_node_id(request.node.id if request.HasField("node") else "")
                        if node is None:
                            await context.abort(
                                grpc.StatusCode.INVALID_ARGUMENT,
                                "the first request must carry node.id {mesh}.{name}",
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
                        None, self._secrets, node, names, token, identity
                    )
                except UnauthorizedError as exc:
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
                except (KumaError, ValueError) as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                sent_nonce = str(next(nonces))
                yield discovery_pb2.DiscoveryResponse(
                    version_info=uuid.uuid4().hex,
                    type_url=SECRET,
                    nonce=sent_nonce,
                    resources=resources,
                )
        finally:
            reader.cancel()

    def _secrets(
        self, node: tuple[str, str], names: list[str], token: str, identity: Identity | None
    ) -> tuple[list[any_pb2.Any], Identity | None]:
        """Runs in a thread."""
        mesh, name = node
        out = []
        for resource in names:
            if resource == MESH_CA:
                secret = trust_bundle(self.authority, mesh)
            elif resource == IDENTITY_CERT:
                if identity is None:
                    self.authenticator.check(mesh, name, token)
                    try:
                        dataplane = self.store.get(DATAPLANE, mesh, name)
                    except NotFoundError:
                        raise UnauthorizedError(
                            f'dataplane "{name}" of mesh "{mesh}" does not exist'
                        ) from None
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
    address: str, servicer: SdsServicer, cert_pem: bytes, key_pem: bytes
) -> tuple[grpc.aio.Server, int]:
    """Serve SDS with TLS on `address` (`host:port`, port 0 = any); returns (server, port)."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
    port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, port
