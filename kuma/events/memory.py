"""The in-process change feed of `kuma-cp run`: publish delivers straight to subscribers."""

from __future__ import annotations

from kuma.events.change import Change
from kuma.events.feed import Callback, Fanout, Subscription


class InProcessFeed:
    """Synchronous fan-out: `publish` returns once every subscriber has seen the change.

    Nothing is ever lost in-process, so wrapping it in a WatchedFeed is only needed for writes
    that bypass the PublishingStore.
    """

    def __init__(self) -> None:
        self._fanout = Fanout()
        self._closed = False

    def publish(self, change: Change) -> None:
        if not self._closed:
            self._fanout.deliver(change)

    def subscribe(self, callback: Callback) -> Subscription:
        return self._fanout.add(callback)

    def close(self) -> None:
        self._closed = True
        self._fanout.clear()
