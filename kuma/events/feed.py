"""The change-feed contract, and the fan-out every feed uses to reach its subscribers.

Delivery rules, the same for every feed:
- a callback is never called concurrently with another callback of the same feed (deliveries
  are serialised), so a subscriber needs no lock against itself; callbacks must be quick
  (mark something dirty, hand off to a queue or an event loop) because they hold up delivery;
- callbacks run on whatever thread the feed delivers from (the publisher's thread for
  InProcessFeed, the listener thread for RedisFeed, the watcher thread for resyncs), so a
  subscriber living in an asyncio loop hands off with `loop.call_soon_threadsafe`;
- a callback that raises is logged and skipped: it never stops delivery to others or later;
- a Change is a hint to re-read, not data; duplicates and reordering are possible.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from kuma.events.change import Change

log = logging.getLogger(__name__)

Callback = Callable[[Change], None]


class Subscription(Protocol):
    def close(self) -> None:
        """Stop delivering to this subscriber; idempotent."""
        ...


class ChangeFeed(Protocol):
    def publish(self, change: Change) -> None:
        """Announce a committed write. Never raises for transport trouble: the revision poll
        covers a change that could not be published."""
        ...

    def subscribe(self, callback: Callback) -> Subscription: ...

    def close(self) -> None: ...


class _FanoutSubscription:
    def __init__(self, fanout: Fanout, callback: Callback) -> None:
        self._fanout = fanout
        self.callback = callback

    def close(self) -> None:
        self._fanout.remove(self)


class Fanout:
    """A thread-safe subscriber list that delivers one change to every callback in turn."""

    def __init__(self) -> None:
        self._subscribers: tuple[_FanoutSubscription, ...] = ()
        self._lock = threading.Lock()
        # Re-entrant so that a callback may publish on the same feed without deadlocking.
        self._delivering = threading.RLock()

    def add(self, callback: Callback) -> Subscription:
        sub = _FanoutSubscription(self, callback)
        with self._lock:
            self._subscribers = (*self._subscribers, sub)
        return sub

    def remove(self, sub: _FanoutSubscription) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not sub)

    def clear(self) -> None:
        with self._lock:
            self._subscribers = ()

    def __len__(self) -> int:
        return len(self._subscribers)

    def deliver(self, change: Change) -> None:
        with self._delivering:
            # A snapshot: subscribing or closing from inside a callback is safe.
            for sub in self._subscribers:
                try:
                    sub.callback(change)
                except Exception:
                    log.exception("change-feed subscriber %r failed on %r", sub.callback, change)
