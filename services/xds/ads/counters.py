"""What a stream sent and what its client confirmed, counted where it happens.

Every response and every ACK of every stream is counted: a callback for each (insights and
metrics each took one) cost about a tenth of the xDS loop under a mesh-wide change. The stream
increments these itself; the insight recorder reads them when it flushes, and the metrics when
they are scraped."""

from __future__ import annotations

import time


class StreamCounters:
    """Per type URL: responses sent, ACKed and NACKed; when the last was counted; whether
    anything was counted since the insight recorder last read them."""

    __slots__ = ("sent", "acked", "nacked", "last_update", "changed")

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.acked: dict[str, int] = {}
        self.nacked: dict[str, int] = {}
        self.last_update: float | None = None  # epoch seconds
        self.changed = False

    def response(self, type_url: str) -> None:
        self._count(self.sent, type_url)

    def ack(self, type_url: str) -> None:
        self._count(self.acked, type_url)

    def nack(self, type_url: str) -> None:
        self._count(self.nacked, type_url)

    def _count(self, counter: dict[str, int], type_url: str) -> None:
        counter[type_url] = counter.get(type_url, 0) + 1
        self.last_update = time.time()
        self.changed = True
