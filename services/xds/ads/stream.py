"""What both protocols share: one queue per stream fed by the request reader and by the cache's
change notices, the node remembered from the first request, and nonces."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import grpc

from kuma.netutil import is_loopback
from services.xds.ads.cache import CHANGED, NodeSnapshot, SnapshotCache
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.types import order

_END = object()


class Stream(ABC):
    """One ADS stream; SotW and delta subclasses answer requests and snapshot changes."""

    def __init__(self, cache: SnapshotCache, callbacks: StreamCallbacks, context: Any):
        self.cache = cache
        self.callbacks = callbacks
        self.context = context
        self.id = uuid.uuid4().hex
        self.node_id: str | None = None
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self._nonces = itertools.count(1)

    def next_nonce(self) -> str:
        return str(next(self._nonces))

    def snapshot(self) -> NodeSnapshot | None:
        return self.cache.get(self.node_id) if self.node_id else None

    async def remember_node(self, request: Any) -> None:
        """gRPC clients send `node` only on the first request: keep it for the whole stream."""
        if self.node_id is not None:
            return
        node_id = request.node.id if request.HasField("node") else ""
        if not node_id:
            await self.context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry node.id"
            )
        self.node_id = node_id
        self.cache.watch(node_id, self.queue)
        self.callbacks.on_credential(
            self.id, node_id, authorization(self.context), peer_is_local(self.context)
        )
        self.callbacks.on_open(self.id, node_id, request.node)

    async def run(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The responses of the stream: to each request, and to each change of the snapshot.

        A response is a copy of its resources (an EDS one can be tens of kB): none is held
        once it is handed over, or every idle stream would keep its last one."""
        async for item in self.events(requests):
            if is_change(item):
                for type_url in sorted_types(self.types):
                    response = self.on_change(type_url)
                    if response is not None:
                        yield response
                        del response
                continue
            request: Any = item
            await self.remember_node(request)
            if not request.type_url:
                await self.context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "type_url is required on ADS requests"
                )
            response = self.on_request(request)
            if response is not None:
                yield response
                del response

    # The protocol's part: its per-type state, and the response (or None) to a request or a
    # change of the node's snapshot.
    types: Mapping[str, object]

    @abstractmethod
    def on_request(self, request: Any) -> Any: ...

    @abstractmethod
    def on_change(self, type_url: str) -> Any: ...

    async def events(self, requests: AsyncIterator[Any]) -> AsyncIterator[object]:
        """Requests and CHANGED notices, in arrival order, until the client closes."""

        async def read() -> None:
            try:
                async for request in requests:
                    self.queue.put_nowait(request)
            finally:
                self.queue.put_nowait(_END)

        reader = asyncio.create_task(read())
        try:
            while True:
                item = await self.queue.get()
                if item is _END:
                    return
                yield item
        finally:
            reader.cancel()
            if self.node_id is not None:
                self.cache.unwatch(self.node_id, self.queue)
            self.callbacks.on_close(self.id)


def authorization(context: Any) -> str:
    """The single `authorization` metadata value of a call ('' if absent or repeated)."""
    try:
        metadata = context.invocation_metadata() or ()
    except Exception:  # noqa: BLE001 (a test double without metadata)
        return ""
    values = [str(v) for k, v in metadata if k.lower() == "authorization"]
    return values[0] if len(values) == 1 else ""


def peer_is_local(context: Any) -> bool:
    """Whether the call comes from this host: gRPC names peers `ipv4:127.0.0.1:5678` or
    `ipv6:[::1]:5678`."""
    try:
        peer = str(context.peer() or "")
    except Exception:  # noqa: BLE001 (a test double without a peer)
        return False
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        host = rest.rsplit(":", 1)[0]
    elif kind == "ipv6":
        host = rest.rsplit(":", 1)[0].strip("[]")
    else:
        return False
    return is_loopback(host)


def is_change(item: object) -> bool:
    return item is CHANGED


def sorted_types(type_urls: Iterable[str]) -> list[str]:
    return sorted(type_urls, key=order)
