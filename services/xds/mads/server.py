"""The MADS gRPC servicer (`kuma.observability.v1alpha1.MonitoringAssignmentDiscoveryService`,
Kuma 0.3.2's v2-style xDS): state of the world over `StreamMonitoringAssignments`, one snapshot
for every client, and `FetchMonitoringAssignments` for a single answer. Delta is not served
(Kuma's server answered "not implemented" too).

A stream is checked (services/xds/mads/auth.py) when it opens, before a request is read; it
then takes one of the process's stream slots (`xdsServer.maxStreams`, shared with ADS and SDS)
and is held to `xdsServer`'s bounds: the first request within `firstRequestTimeout`, at most
`streamQueueSize` requests buffered, `maxResourceNamesPerRequest` names, only the
MonitoringAssignment type URL (or none)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.api.v2 import discovery_pb2

from services.xds.ads.server import StreamPolicy, listen, serve_stream, server_options
from services.xds.ads.stream import CHANGED, Inbox, Slot, StreamRefused, Write, inbox_events
from services.xds.mads import assignments
from services.xds.mads.auth import AdminCredential
from services.xds.mads.proto import mads_pb2_grpc
from services.xds.mads.reconciler import AssignmentCache, Snapshot

log = logging.getLogger("kuma.mads")
TYPE_URL = assignments.TYPE_URL
FETCH_WAIT = 10.0  # how long a Fetch waits for the first snapshot of an idle server


def _check(request: Any, policy: StreamPolicy) -> None:
    if request.type_url not in ("", TYPE_URL):
        raise StreamRefused(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"type_url {request.type_url[:256]!r} is not served here: only {TYPE_URL}",
        )
    if len(request.resource_names) > policy.limits.names_per_request:
        raise StreamRefused(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{len(request.resource_names)} resource names per request: at most "
            f"{policy.limits.names_per_request} are allowed",
        )


def response(snapshot: Snapshot, names: frozenset[str], nonce: str) -> Any:
    """The snapshot's assignments (those in `names`, or all when empty) as one response."""
    resources = [r for n, r in snapshot.resources if not names or n in names]
    return discovery_pb2.DiscoveryResponse(
        version_info=snapshot.version, resources=resources, type_url=TYPE_URL, nonce=nonce
    )


class MadsStream:
    """One StreamMonitoringAssignments call after its credential was accepted."""

    def __init__(self, cache: AssignmentCache, policy: StreamPolicy, context: Any) -> None:
        self.cache = cache
        self.policy = policy
        self.context = context
        self.inbox = Inbox(policy.limits.queue_size)
        self.slot: Slot | None = None  # set by serve_stream
        self.opened = False  # its first request came: it watches the assignments
        self.client = ""
        self.names: frozenset[str] = frozenset()
        self.waiting = False  # the client waits for a response (it answered the last one)
        self.known: str | None = None  # the version the client has (or refused)
        self.sent_nonce: str | None = None
        self._nonces = itertools.count(1)

    async def serve(self, requests: AsyncIterator[Any], write: Write) -> None:
        async for answer in self.run(requests):
            await write(answer)
            del answer

    async def run(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        # The caller is authenticated before the stream starts: it is never evicted for a
        # newcomer, and its queue may fill.
        if self.slot is not None:
            self.slot.bound()
        self.inbox.widen()
        events = inbox_events(requests, self.inbox, self.policy.limits.first_request_timeout)
        try:
            async for item in events:
                if item is not CHANGED:
                    if not self.opened:
                        self._open(item)
                    self._on_request(item)
                answer = self._respond()
                if answer is not None:
                    yield answer
                    del answer
        finally:
            self.cache.unwatch(self.inbox)

    def _open(self, first: Any) -> None:
        self.opened = True
        self.client = first.node.id[:256] if first.HasField("node") else ""
        log.info("MADS stream of %r from %s opened", self.client, self.context.peer())
        self.cache.watch(self.inbox)

    def _on_request(self, request: Any) -> None:
        _check(request, self.policy)
        nonce = request.response_nonce
        if nonce and nonce != self.sent_nonce:
            return  # answers a response since superseded: ignore
        names = frozenset(request.resource_names)
        self.waiting = True
        if nonce and request.HasField("error_detail"):
            log.warning(
                "MADS client %r refused version %s: %s",
                self.client,
                self.known,
                request.error_detail.message[:512],
            )
            if names != self.names:
                self.known = None  # it asks for something else: answer that
        else:
            self.known = request.version_info if names == self.names or not nonce else None
        self.names = names

    def _respond(self) -> Any:
        snapshot = self.cache.snapshot
        if not self.waiting or snapshot is None or snapshot.version == self.known:
            return None
        self.waiting = False
        self.known = snapshot.version
        self.sent_nonce = str(next(self._nonces))
        return response(snapshot, self.names, self.sent_nonce)


class MadsServicer(mads_pb2_grpc.MonitoringAssignmentDiscoveryServiceServicer):
    def __init__(
        self, cache: AssignmentCache, credential: AdminCredential, policy: StreamPolicy
    ) -> None:
        self.cache = cache
        self.credential = credential
        self.policy = policy

    async def StreamMonitoringAssignments(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> None:
        await self.credential.check(context)
        stream = MadsStream(self.cache, self.policy, context)
        try:
            await serve_stream(stream, self.policy.slots, request_iterator)
        finally:
            if stream.client or stream.sent_nonce:
                log.info("MADS stream of %r closed", stream.client)

    async def FetchMonitoringAssignments(  # noqa: N802 (gRPC's name)
        self, request: Any, context: Any
    ) -> Any:
        await self.credential.check(context)
        try:
            _check(request, self.policy)
        except StreamRefused as exc:
            await context.abort(exc.code, exc.message)
        inbox = Inbox(1)
        self.cache.watch(inbox)  # an idle server reads the store for its first watcher
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FETCH_WAIT):
                    while self.cache.snapshot is None:
                        await inbox.get()
            snapshot = self.cache.snapshot
        finally:
            self.cache.unwatch(inbox)
        if snapshot is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no monitoring assignments yet")
        assert snapshot is not None
        return response(snapshot, frozenset(request.resource_names), "")

    async def DeltaMonitoringAssignments(  # noqa: N802 (gRPC's name)
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not implemented")


async def start_mads_server(
    address: str,
    servicer: MadsServicer,
    *,
    tls: tuple[bytes, bytes] | None,
    max_message_bytes: int = 4 * 1024 * 1024,
) -> tuple[grpc.aio.Server, int]:
    """Serve MADS on `address` (`host:port`, port 0 = any); (server, port bound)."""
    server = grpc.aio.server(options=server_options(max_message_bytes))
    mads_pb2_grpc.add_MonitoringAssignmentDiscoveryServiceServicer_to_server(servicer, server)
    try:
        port = listen(server, address, tls)
    except BaseException:
        await server.stop(0)
        raise
    await server.start()
    return server, port
