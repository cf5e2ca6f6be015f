"""What a stream reports as it goes: the hooks DataplaneInsight maintenance (spec §12.2) and
metrics attach to. The default does nothing but log NACKs."""

from __future__ import annotations

import logging

log = logging.getLogger("kuma.xds")


class StreamCallbacks:
    def on_open(self, stream_id: str, node_id: str) -> None:
        """The stream's first request named its node."""

    def on_ack(self, stream_id: str, type_url: str) -> None:
        pass

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        log.warning("%s: Envoy rejected %s version %s: %s", stream_id, type_url, version, message)

    def on_response(self, stream_id: str, type_url: str, version: str, count: int) -> None:
        pass

    def on_close(self, stream_id: str) -> None:
        pass
