"""No lost change: the revision poll that backs up the change feed (DESIGN §3).

Every committed write bumps the store revision by one and publishes one Change carrying it. The
watcher keeps a *watermark*: the highest revision R such that every revision up to R has been
heard of (through the feed, or covered by a resync). Tracking gaps rather than just the highest
revision seen matters: if revision 5 is lost and 6 arrives, "highest seen" would say all is well.

Every `interval` it reads the store revision S. S above the watermark is normal for a moment
(writes publish just after they commit), so it is only a *suspect*; if the watermark still has
not reached it `grace` seconds later, a change was lost and subscribers get `Change.resync(S)`:
they re-read everything, which covers every revision up to S, so the watermark jumps to S.

A store revision that skips numbers (or a write that bypasses PublishingStore) shows up as a gap
that never fills: it costs one needless resync, never a lost change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kuma.events.change import Change
from kuma.events.feed import Callback, ChangeFeed, Fanout, Subscription

log = logging.getLogger(__name__)


class RevisionWatcher:
    """The tracker and its poll thread; delivers resyncs to `deliver`.

    Feed changes are passed to `observe`; a feed's own RESYNC (e.g. Redis reconnected) goes to
    `request_resync`, which resyncs at the store's current revision right away.
    Call `start()` once, `close()` to stop.
    """

    def __init__(
        self,
        store_revision: Callable[[], int],
        deliver: Callback,
        interval: float,
        *,
        grace: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._store_revision = store_revision
        self._deliver = deliver
        self._interval = interval
        # Long enough for a committed write to reach us through the feed; short enough that a
        # lost change costs at most about interval + grace.
        self._grace = min(interval, 1.0) if grace is None else grace
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ahead: set[int] = set()  # revisions heard of above watermark + 1
        self._suspect: tuple[int, float] | None = None  # (store revision, when read)
        self._force = False
        self._store_failing = False
        self.resyncs = 0  # how many resyncs were delivered (for metrics and tests)
        self._watermark = 0
        self._thread = threading.Thread(target=self._run, name="revision-watcher", daemon=True)

    @property
    def watermark(self) -> int:
        return self._watermark

    def start(self) -> None:
        """Read the starting revision and start polling. Call it after subscribing to the feed
        (so no change falls between the two) and before subscribers read the store."""
        try:
            baseline = self._store_revision()
        except Exception:
            log.warning("change feed: cannot read the store revision; will resync once it can")
            baseline = 0
            self._force = True
        with self._lock:
            self._watermark = max(self._watermark, baseline)
            self._ahead = {r for r in self._ahead if r > self._watermark}
            self._advance()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def observe(self, change: Change) -> None:
        if change.is_resync:
            self.request_resync()
            return
        with self._lock:
            revision = change.revision
            if revision <= self._watermark:
                return
            self._ahead.add(revision)
            self._advance()

    def request_resync(self) -> None:
        with self._lock:
            self._force = True
        self._wake.set()

    def _advance(self) -> None:
        """Move the watermark over every contiguous revision heard of (lock held)."""
        while self._watermark + 1 in self._ahead:
            self._watermark += 1
            self._ahead.discard(self._watermark)

    def _run(self) -> None:
        wait = 0.0 if self._force else self._interval
        while not self._stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                wait = self._check()
            except Exception:
                # A bug must not end the guard for the life of the process.
                log.exception("change feed: revision watcher failed")
                wait = self._interval

    def _check(self) -> float:
        """Poll once; deliver a resync when due. Returns how long to wait before the next poll."""
        try:
            current = self._store_revision()
        except Exception as exc:
            if not self._store_failing:
                log.warning("change feed: reading the store revision failed (%s); retrying", exc)
            self._store_failing = True
            return self._interval
        if self._store_failing:
            self._store_failing = False
            log.info("change feed: reading the store revision works again")
        now = time.monotonic()
        with self._lock:
            overdue = (
                self._suspect is not None
                and self._watermark < self._suspect[0]
                and now - self._suspect[1] >= self._grace
            )
            if self._force or overdue:
                self._force = False
                self._suspect = None
                # Subscribers re-read after this, so they will have everything up to `current`.
                self._watermark = max(self._watermark, current)
                self._ahead = {r for r in self._ahead if r > self._watermark}
                self._advance()
                resync = True
            else:
                resync = False
                if self._watermark >= current:
                    self._suspect = None
                elif self._suspect is None or self._watermark >= self._suspect[0]:
                    self._suspect = (current, now)
            wait = self._interval
            if self._suspect is not None:
                wait = min(wait, max(0.0, self._suspect[1] + self._grace - now))
        if resync:
            self.resyncs += 1
            log.info("change feed: resync at store revision %d", current)
            self._deliver(Change.resync(current))
        return wait


class WatchedFeed:
    """A ChangeFeed whose subscribers get one stream: the inner feed's changes, plus a RESYNC
    whenever a change was lost (revision poll) or the inner feed says it missed messages.

    The inner feed's own RESYNCs are not passed on as such: they trigger an immediate resync
    carrying the store's current revision. `close()` closes the inner feed too unless
    `close_feed=False`.
    """

    def __init__(
        self,
        feed: ChangeFeed,
        store_revision: Callable[[], int],
        interval: float,
        *,
        grace: float | None = None,
        close_feed: bool = True,
    ) -> None:
        self._feed = feed
        self._close_feed = close_feed
        self._fanout = Fanout()
        self.watcher = RevisionWatcher(store_revision, self._fanout.deliver, interval, grace=grace)
        self._inner = feed.subscribe(self._on_change)
        self.watcher.start()

    def _on_change(self, change: Change) -> None:
        self.watcher.observe(change)
        if not change.is_resync:
            self._fanout.deliver(change)

    def publish(self, change: Change) -> None:
        self._feed.publish(change)

    def subscribe(self, callback: Callback) -> Subscription:
        return self._fanout.add(callback)

    def close(self) -> None:
        self._inner.close()
        self.watcher.close()
        self._fanout.clear()
        if self._close_feed:
            self._feed.close()
