"""What a stream reports as it goes: the hooks DataplaneInsight maintenance (spec §12.2) and
metrics attach to. Responses and ACKs are not events: a stream counts them in its
StreamCounters (ads/counters.py), handed over when it opens. The default does nothing but log
NACKs."""

from __future__ import annotations

import logging
from typing import Any

from services.xds.ads.counters import StreamCounters

log = logging.getLogger("kuma.xds")


class StreamCallbacks:
    def on_credential(
        self, stream_id: str, node_id: str, authorization: str, local: bool = False
    ) -> None:
        """Before `on_open`: the stream's `authorization` metadata ('' when absent), and
        whether the peer is on this host (loopback)."""

    def on_open(
        self, stream_id: str, node_id: str, node: Any, counters: StreamCounters | None = None
    ) -> None:
        """The stream's first request named its node (`node` is Envoy's Node message); what it
        sends and has confirmed is counted in `counters`."""

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        log.warning("%s: Envoy rejected %s version %s: %s", stream_id, type_url, version, message)

    def on_delivered(self, stream_id: str, type_url: str, seconds: float) -> None:
        """The client ACKed the first response of `type_url` that carried a change noticed
        `seconds` ago (once per change, type and stream)."""

    def on_close(self, stream_id: str) -> None:
        pass


class CallbackChain(StreamCallbacks):
    """Several callbacks as one, called in order. Each event goes only to the callbacks that
    handle it, and a NACK is logged once."""

    def __init__(self, *chain: StreamCallbacks):
        self.chain = chain

        def handlers(event: str) -> tuple[StreamCallbacks, ...]:
            default = getattr(StreamCallbacks, event)
            return tuple(c for c in chain if getattr(type(c), event) is not default)

        self._credential = handlers("on_credential")
        self._open = handlers("on_open")
        self._nack = handlers("on_nack")
        self._delivered = handlers("on_delivered")
        self._close = handlers("on_close")

    def on_credential(
        self, stream_id: str, node_id: str, authorization: str, local: bool = False
    ) -> None:
        for c in self._credential:
            c.on_credential(stream_id, node_id, authorization, local)

    def on_open(
        self, stream_id: str, node_id: str, node: Any, counters: StreamCounters | None = None
    ) -> None:
        for c in self._open:
            c.on_open(stream_id, node_id, node, counters)

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        super().on_nack(stream_id, type_url, version, message)
        for c in self._nack:
            c.on_nack(stream_id, type_url, version, message)

    def on_delivered(self, stream_id: str, type_url: str, seconds: float) -> None:
        for c in self._delivered:
            c.on_delivered(stream_id, type_url, seconds)

    def on_close(self, stream_id: str) -> None:
        for c in self._close:
            c.on_close(stream_id)
