"""The revision poll without Redis: a feed that loses messages on demand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from kuma.events import Change, InProcessFeed, PublishingStore, WatchedFeed
from kuma.store.memory import MemoryStore
from tests.waiting import wait_until

from .helpers import Recorder, dataplane, mesh

INTERVAL = 0.1


class LossyFeed(InProcessFeed):
    """Drops every publish while `lose` is set, or the revisions listed in `drop`."""

    def __init__(self) -> None:
        super().__init__()
        self.lose = False
        self.drop: set[int] = set()

    def publish(self, change: Change) -> None:
        if not self.lose and change.revision not in self.drop:
            super().publish(change)


@pytest.fixture()
def world() -> Iterator[tuple[PublishingStore, LossyFeed, WatchedFeed, Recorder]]:
    inner = LossyFeed()
    base = MemoryStore()
    watched = WatchedFeed(inner, base.revision, INTERVAL)
    store = PublishingStore(base, watched)
    rec = Recorder()
    watched.subscribe(rec)
    try:
        yield store, inner, watched, rec
    finally:
        watched.close()


def test_changes_pass_through_without_resyncs(world) -> None:
    store, _, watched, rec = world
    store.create(mesh())
    deadline = time.monotonic() + 5 * INTERVAL
    i = 0
    while time.monotonic() < deadline:  # keep writing across several polls
        store.create(dataplane(f"dp-{i}"))
        i += 1
        time.sleep(0.005)
    time.sleep(2 * INTERVAL)
    assert rec.resyncs == [] and watched.watcher.resyncs == 0
    assert [c.revision for c in rec.changes] == list(range(1, store.revision() + 1))
    assert watched.watcher.watermark == store.revision()


def test_lost_change_is_caught_by_the_poll(world) -> None:
    store, inner, watched, rec = world
    store.create(mesh())
    inner.lose = True
    store.create(dataplane("dp-1"))
    store.create(dataplane("dp-2"))
    target = store.revision()
    started = time.monotonic()
    assert wait_until(lambda: any(c.revision >= target for c in rec.resyncs), timeout=2.0)
    # interval + grace (both INTERVAL here) + scheduling margin
    assert time.monotonic() - started < 2 * INTERVAL + 0.3
    assert rec.names() == ["default"]
    # One loss, one resync: it does not repeat.
    time.sleep(4 * INTERVAL)
    assert len(rec.resyncs) == 1
    # Once messages flow again, they arrive as usual.
    inner.lose = False
    store.create(dataplane("dp-3"))
    assert rec.names()[-1] == "dp-3"
    time.sleep(3 * INTERVAL)
    assert len(rec.resyncs) == 1


def test_gap_is_a_lost_change_even_when_later_ones_arrive(world) -> None:
    store, inner, _, rec = world
    store.create(mesh())  # revision 1
    inner.drop = {2}
    store.create(dataplane("dp-1"))  # 2: lost
    store.create(dataplane("dp-2"))  # 3: arrives, so "highest seen" equals the store revision
    assert rec.names() == ["default", "dp-2"]
    assert wait_until(lambda: [c.revision for c in rec.resyncs] == [3], timeout=2.0)


def test_write_that_bypasses_publishing_is_caught(world) -> None:
    store, _, _, rec = world
    store.create(mesh())
    store.store.create(dataplane("sneaky"))  # straight into the inner store: never published
    assert wait_until(lambda: [c.revision for c in rec.resyncs] == [2], timeout=2.0)


def test_inner_feed_resync_becomes_an_immediate_resync_at_store_revision() -> None:
    inner = InProcessFeed()
    base = MemoryStore()
    base.create(mesh())
    watched = WatchedFeed(inner, base.revision, interval=30.0)  # the poll will not help here
    rec = Recorder()
    watched.subscribe(rec)
    try:
        base.create(dataplane("dp-1"))
        inner.publish(Change.resync(0))  # e.g. RedisFeed after a reconnect
        assert wait_until(lambda: [c.revision for c in rec.resyncs] == [2], timeout=1.0)
        assert rec.changes == rec.resyncs  # the inner marker itself is not passed on
        assert watched.watcher.watermark == 2
    finally:
        watched.close()


def test_store_errors_are_retried(caplog) -> None:
    base = MemoryStore()
    failing = threading.Event()
    failing.set()
    calls = 0

    def store_revision() -> int:
        nonlocal calls
        calls += 1
        if failing.is_set():
            raise ConnectionError("database down")
        return base.revision()

    inner = LossyFeed()
    watched = WatchedFeed(inner, store_revision, INTERVAL)
    rec = Recorder()
    watched.subscribe(rec)
    try:
        # Could not read a starting revision: subscribers resync once the store answers.
        assert wait_until(lambda: calls >= 3, timeout=2.0)
        assert rec.resyncs == []
        base.create(mesh())
        failing.clear()
        assert wait_until(lambda: [c.revision for c in rec.resyncs] == [1], timeout=2.0)
        assert "database down" in caplog.text
        # And later losses are still caught.
        inner.lose = True
        PublishingStore(base, watched).create(dataplane("dp-1"))
        assert wait_until(lambda: [c.revision for c in rec.resyncs] == [1, 2], timeout=2.0)
    finally:
        watched.close()


def test_failing_subscriber_does_not_stop_resyncs(world) -> None:
    store, inner, watched, rec = world

    def broken(change: Change) -> None:
        raise RuntimeError("boom")

    watched.subscribe(broken)
    inner.lose = True
    store.create(mesh())
    assert wait_until(lambda: len(rec.resyncs) == 1, timeout=2.0)
    store.create(dataplane("dp-1"))
    assert wait_until(lambda: len(rec.resyncs) == 2, timeout=2.0)


def test_close_stops_the_watcher() -> None:
    inner = InProcessFeed()
    watched = WatchedFeed(inner, MemoryStore().revision, INTERVAL)
    watched.close()
    assert not watched.watcher._thread.is_alive()
    rec = Recorder()
    inner.subscribe(rec)
    inner.publish(Change.resync(0))  # the inner feed was closed with it
    assert rec.changes == []


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        WatchedFeed(InProcessFeed(), MemoryStore().revision, 0)
