"""What a stream reports as it goes: the hooks DataplaneInsight maintenance (spec §12.2) and
metrics attach to. The default does nothing but log NACKs."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("kuma.xds")


class StreamCallbacks:
    def on_credential(
        self, stream_id: str, node_id: str, authorization: str, local: bool = False
    ) -> None:
        """Before `on_open`: the stream's `authorization` metadata ('' when absent), and
        whether the peer is on this host (loopback)."""

    def on_open(self, stream_id: str, node_id: str, node: Any) -> None:
        """The stream's first request named its node (`node` is Envoy's Node message)."""

    def on_ack(self, stream_id: str, type_url: str) -> None:
        pass

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        log.warning("%s: Envoy rejected %s version %s: %s", stream_id, type_url, version, message)

    def on_response(self, stream_id: str, type_url: str, version: str, count: int) -> None:
        pass

    def on_close(self, stream_id: str) -> None:
        pass


class CallbackChain(StreamCallbacks):
    """Several callbacks as one, called in order. Each event goes only to the callbacks that
    handle it (every response and ACK passes through here), and a NACK is logged once."""

    def __init__(self, *chain: StreamCallbacks):
        self.chain = chain

        def handlers(event: str) -> tuple[StreamCallbacks, ...]:
            default = getattr(StreamCallbacks, event)
            return tuple(c for c in chain if getattr(type(c), event) is not default)

        self._credential = handlers("on_credential")
        self._open = handlers("on_open")
        self._ack = handlers("on_ack")
        self._nack = handlers("on_nack")
        self._response = handlers("on_response")
        self._close = handlers("on_close")

    def on_credential(
        self, stream_id: str, node_id: str, authorization: str, local: bool = False
    ) -> None:
        for c in self._credential:
            c.on_credential(stream_id, node_id, authorization, local)

    def on_open(self, stream_id: str, node_id: str, node: Any) -> None:
        for c in self._open:
            c.on_open(stream_id, node_id, node)

    def on_ack(self, stream_id: str, type_url: str) -> None:
        for c in self._ack:
            c.on_ack(stream_id, type_url)

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        super().on_nack(stream_id, type_url, version, message)
        for c in self._nack:
            c.on_nack(stream_id, type_url, version, message)

    def on_response(self, stream_id: str, type_url: str, version: str, count: int) -> None:
        for c in self._response:
            c.on_response(stream_id, type_url, version, count)

    def on_close(self, stream_id: str) -> None:
        for c in self._close:
            c.on_close(stream_id)
