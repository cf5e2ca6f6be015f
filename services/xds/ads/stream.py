"""What both protocols share: the stream's inbox (requests from the client, change notices from
the cache), its binding to one dataplane at the first request, nonces, and the bounds that keep
what one client can make the server hold small (docs/security.md)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from services.xds.ads.cache import NodeSnapshot, SnapshotCache
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.counters import StreamCounters
from services.xds.ads.types import KNOWN_TYPES, order
from services.xds.auth import Principal, StreamAuthenticator

# An xDS resource name longer than this is refused. Not a stored resource's name (those are
# kuma.manager.MAX_NAME_LENGTH): generated names, of which the longest (clusters with tags) stay
# far below it.
MAX_XDS_NAME_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Per-stream bounds (xdsServer.* in the config)."""

    queue_size: int = 8
    names_per_request: int = 10_000
    names_per_subscription: int = 10_000
    first_request_timeout: float = 30.0
    # bytes of resource names a stream may hold, all types together (xdsServer.maxMessageBytes:
    # a subscription never needs more than one request can carry)
    name_bytes: int = 4 * 1024 * 1024


class StreamRefused(Exception):
    """The client broke a rule: the stream ends with `code` and `message`."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Inbox:
    """Requests, at most `size` waiting (the reader stops reading the client until there is
    room: HTTP/2 flow control then holds the client back), and at most one pending change notice,
    however often the cache says the snapshot changed.

    Every response and ACK of every stream passes through here, so the two waits are bare
    futures (one reader, one consumer) rather than asyncio's Event and Semaphore."""

    __slots__ = (
        "_requests",
        "_room",
        "_more",
        "_changed",
        "_ended",
        "_evicted",
        "_ready",
        "_space",
    )

    def __init__(self, size: int) -> None:
        self._requests: deque[Any] = deque()
        # One request until the stream is bound (`widen`): a client that has not proved who it
        # is cannot make the server buffer more than one message.
        self._room = 1
        self._more = size - 1
        self._changed = False
        self._ended = False
        self._evicted = False
        self._ready: asyncio.Future[None] | None = None  # the consumer waits for an item
        self._space: asyncio.Future[None] | None = None  # the reader waits for room

    def offer(self, request: Any) -> bool:
        """Take `request` if there is room (no coroutine for the common case); False if not."""
        if self._room <= 0:
            return False
        self._room -= 1
        self._requests.append(request)
        self._wake()
        return True

    async def put(self, request: Any) -> None:
        while self._room <= 0:
            self._space = asyncio.get_running_loop().create_future()
            await self._space
        self._room -= 1
        self._requests.append(request)
        self._wake()

    def widen(self) -> None:
        """The stream is bound: let the rest of its queue fill."""
        self._room += self._more
        self._more = 0
        self._free()

    def changed(self) -> None:
        """The cache's notice: the node's snapshot changed (called on the loop)."""
        self._changed = True
        self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    def evict(self) -> None:
        """The server is full and this stream has not said who it is: it ends at once."""
        self._evicted = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._ready = self._ready, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _free(self) -> None:
        waiter, self._space = self._space, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        """The next request, CHANGED, or END; requests first, in arrival order. StreamRefused
        once evicted."""
        while True:
            if self._evicted:
                raise StreamRefused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "the server is full and this stream had not sent its first request",
                )
            if self._requests:
                self._room += 1
                self._free()
                return self._requests.popleft()
            if self._changed:
                self._changed = False
                return CHANGED
            if self._ended:
                return END
            self._ready = asyncio.get_running_loop().create_future()
            await self._ready


CHANGED = object()
END = object()
Write = Callable[[Any], Awaitable[None]]  # how a stream's responses go out (context.write)


class Slot:
    """One stream's place in its process's StreamSlots."""

    __slots__ = ("pool", "inbox", "held")

    def __init__(self, pool: StreamSlots, inbox: Inbox) -> None:
        self.pool, self.inbox, self.held = pool, inbox, True

    def bound(self) -> None:
        """The stream proved who it is: it can no longer be evicted for a newcomer."""
        self.pool.pending.pop(id(self), None)

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.pool.open -= 1
        self.bound()


class StreamSlots:
    """Streams open in this process (ADS and SDS share one count). When all are taken, a new
    stream evicts the oldest one that has not yet been bound to a dataplane (connections that
    say nothing cannot lock dataplanes out); if every stream is bound, the newcomer is refused
    with RESOURCE_EXHAUSTED. Either way memory stays in proportion to `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.pending: dict[int, Slot] = {}  # not bound yet, oldest first

    def take(self, inbox: Inbox) -> Slot | None:
        if self.open >= self.limit:
            if not self.pending:
                return None
            oldest = next(iter(self.pending.values()))
            oldest.give_back()
            oldest.inbox.evict()
        slot = Slot(self, inbox)
        self.open += 1
        self.pending[id(slot)] = slot
        return slot


class Stream(ABC):
    """One ADS stream; SotW and delta subclasses answer requests and snapshot changes."""

    # Whether what the client says of itself (node metadata) shapes its config: an Envoy's ADS
    # stream does; its SDS stream (secrets only) must not speak over it.
    describes_node = True

    def __init__(
        self,
        cache: SnapshotCache,
        callbacks: StreamCallbacks,
        context: Any,
        auth: StreamAuthenticator | None = None,
        limits: StreamLimits = StreamLimits(),
    ):
        self.cache = cache
        self.callbacks = callbacks
        self.context = context
        self.auth = auth
        self.limits = limits
        self.id = uuid.uuid4().hex
        self.node_id: str | None = None
        self.principal: Principal | None = None
        self.inbox = Inbox(limits.queue_size)
        self.slot: Slot | None = None  # set by the server that admitted the stream
        self._nonces = itertools.count(1)
        self._name_bytes: dict[str, int] = {}  # type URL -> bytes of the names it holds
        self._order: list[str] = []  # `types` in the order responses go out
        self.counters = StreamCounters()
        # type URL -> the noticed change its latest counted response carried / awaits an ACK
        self._carried: dict[str, float] = {}
        self._awaiting: dict[str, float] = {}

    def next_nonce(self) -> str:
        return str(next(self._nonces))

    def responded(self, type_url: str) -> None:
        """Count a response of `type_url`. The first one since the node's snapshot changed
        carries that change: its ACK is the change's delivery."""
        self.counters.response(type_url)
        noticed = self.cache.noticed(self.node_id) if self.node_id else None
        if noticed is not None and self._carried.get(type_url) != noticed:
            self._carried[type_url] = self._awaiting[type_url] = noticed

    def confirmed(self, type_url: str, accepted: bool) -> None:
        """Count the client's ACK (`accepted`) or NACK of the last response of `type_url`."""
        if accepted:
            self.counters.ack(type_url)
        else:
            self.counters.nack(type_url)
        noticed = self._awaiting.pop(type_url, None)
        if noticed is not None and accepted:
            self.callbacks.on_delivered(self.id, type_url, time.monotonic() - noticed)

    def snapshot(self) -> NodeSnapshot | None:
        return self.cache.get(self.node_id) if self.node_id else None

    async def bind(self, request: Any) -> None:
        """The first request binds the stream to the dataplane its credential names; every later
        one that names a node must name the same. gRPC clients send `node` only first."""
        node_id = claimed_node(request, self.node_id)
        if self.node_id is not None:
            return
        if self.auth is not None:
            self.principal = await self.auth.bind(node_id, self.context)
        if self.slot is not None:
            self.slot.bound()
        self.inbox.widen()
        self.node_id = node_id
        self.cache.watch(node_id, self.inbox)
        node = request.node if self.describes_node else None
        self.callbacks.on_open(self.id, node_id, node, self.counters)

    def check_request(self, type_url: str, names: int) -> None:
        if not type_url:
            raise StreamRefused(
                grpc.StatusCode.INVALID_ARGUMENT, "type_url is required on ADS requests"
            )
        if type_url not in KNOWN_TYPES:
            raise StreamRefused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"type_url {type_url[:256]!r} is not served here",
            )
        self.check_names(names, self.limits.names_per_request, "per request")

    @staticmethod
    def check_names(count: int, limit: int, what: str) -> None:
        if count > limit:
            raise StreamRefused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{count} resource names {what}: at most {limit} are allowed",
            )

    def hold_names(self, type_url: str, size: int) -> None:
        """The names of `type_url` now take `size` bytes: all types together must stay within
        the stream's budget."""
        self._name_bytes[type_url] = size
        total = sum(self._name_bytes.values())
        if total > self.limits.name_bytes:
            raise StreamRefused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{total} bytes of resource names: at most {self.limits.name_bytes} per stream",
            )

    @staticmethod
    def check_name_lengths(names: Iterable[str]) -> None:
        for name in names:
            if len(name) > MAX_XDS_NAME_LENGTH:
                raise StreamRefused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"a resource name of {len(name)} characters: at most {MAX_XDS_NAME_LENGTH}",
                )

    async def serve(self, requests: AsyncIterator[Any], write: Write) -> None:
        """Answer each request, and each change of the snapshot, through `write` until the
        client closes. One coroutine: every response and ACK of every stream resumes it, and
        each layer of async generators it went through cost a frame switch both ways.

        A response is a copy of its resources (an EDS one can be tens of kB): none is held
        once it is handed over, or every idle stream would keep its last one."""
        inbox = self.inbox
        reader = start_reading(requests, inbox)
        try:
            item = await first_item(inbox, self.limits.first_request_timeout)
            while item is not END:
                if item is CHANGED:
                    for type_url in self._type_order():
                        response = self.on_change(type_url)
                        if response is not None:
                            await write(response)
                            response = None
                else:
                    if self.node_id is None:
                        await self.bind(item)
                    else:  # bound: a later request may only name the same node
                        claimed_node(item, self.node_id)
                    response = self.on_request(item)
                    if response is not None:
                        await write(response)
                        response = None
                item = await inbox.get()
        finally:
            reader.cancel()
            if self.node_id is not None:
                self.cache.unwatch(self.node_id, self.inbox)
            self.callbacks.on_close(self.id)

    def _type_order(self) -> list[str]:
        # Types are only ever added: the order is sorted again when one is.
        if len(self._order) != len(self.types):
            self._order = sorted_types(self.types)
        return self._order

    # The protocol's part: its per-type state, and the response (or None) to a request or a
    # change of the node's snapshot. `on_request` checks the request's bounds first.
    types: Mapping[str, object]

    @abstractmethod
    def on_request(self, request: Any) -> Any: ...

    @abstractmethod
    def on_change(self, type_url: str) -> Any: ...


def start_reading(requests: AsyncIterator[Any], inbox: Inbox) -> asyncio.Task[None]:
    """Read the client's requests into `inbox` by a task of their own, so that a slow client
    holds no place in line; the inbox ends when the client closes. Cancel it when done."""

    async def read() -> None:
        try:
            async for request in requests:
                if not inbox.offer(request):
                    await inbox.put(request)
        finally:
            inbox.end()

    return asyncio.create_task(read())


async def first_item(inbox: Inbox, first_request_timeout: float) -> object:
    """The inbox's first item: the first request must come within `first_request_timeout`."""
    try:
        return await asyncio.wait_for(inbox.get(), timeout=first_request_timeout)
    except TimeoutError:
        raise StreamRefused(
            grpc.StatusCode.DEADLINE_EXCEEDED, "no request within the first-request timeout"
        ) from None


async def inbox_events(
    requests: AsyncIterator[Any], inbox: Inbox, first_request_timeout: float
) -> AsyncIterator[object]:
    """What a stream's inbox receives, in arrival order: the client's requests and CHANGED
    notices, until the client closes."""
    reader = start_reading(requests, inbox)
    try:
        item = await first_item(inbox, first_request_timeout)
        while item is not END:
            yield item
            item = await inbox.get()
    finally:
        reader.cancel()


def claimed_node(request: Any, bound: str | None) -> str:
    """The node a request speaks for: the first request of a stream (`bound` None) must name
    one; a later one may name only the node the stream is bound to, or none."""
    node_id = request.node.id if request.HasField("node") else ""
    if bound is not None:
        if node_id and node_id != bound:
            raise StreamRefused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this stream belongs to {bound}, not {node_id[:256]}",
            )
        return bound
    if not node_id:
        raise StreamRefused(
            grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry node.id"
        )
    return node_id


def sorted_types(type_urls: Iterable[str]) -> list[str]:
    return sorted(type_urls, key=order)
