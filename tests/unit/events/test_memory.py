from __future__ import annotations

import threading

from kuma.events import Change, InProcessFeed

from .helpers import Recorder

CHANGE = Change("create", "Dataplane", "default", "dp-1", 1, 1)


def test_fans_out_to_every_subscriber() -> None:
    feed = InProcessFeed()
    first, second = Recorder(), Recorder()
    feed.subscribe(first)
    feed.subscribe(second)
    feed.publish(CHANGE)
    assert first.changes == [CHANGE] and second.changes == [CHANGE]


def test_closed_subscription_gets_nothing_more() -> None:
    feed = InProcessFeed()
    rec = Recorder()
    sub = feed.subscribe(rec)
    feed.publish(CHANGE)
    sub.close()
    sub.close()  # idempotent
    feed.publish(CHANGE)
    assert rec.changes == [CHANGE]


def test_failing_subscriber_does_not_stop_delivery(caplog) -> None:
    feed = InProcessFeed()
    rec = Recorder()

    def broken(change: Change) -> None:
        raise RuntimeError("boom")

    feed.subscribe(broken)
    feed.subscribe(rec)
    feed.publish(CHANGE)
    feed.publish(CHANGE)
    assert rec.changes == [CHANGE, CHANGE]
    assert "boom" in caplog.text


def test_callback_may_publish_and_subscribe() -> None:
    feed = InProcessFeed()
    rec = Recorder()
    follow_up = Change("update", "Dataplane", "default", "dp-1", 2, 2)

    def chain(change: Change) -> None:
        if change == CHANGE:
            feed.subscribe(rec)  # joins for the next delivery, not this one
            feed.publish(follow_up)

    feed.subscribe(chain)
    feed.publish(CHANGE)
    assert rec.changes == [follow_up]


def test_concurrent_publishers_deliver_everything_one_at_a_time() -> None:
    feed = InProcessFeed()
    active = 0
    overlap = False
    seen: list[int] = []
    lock = threading.Lock()

    def callback(change: Change) -> None:
        nonlocal active, overlap
        with lock:
            active += 1
            overlap = overlap or active > 1
        seen.append(change.revision)
        with lock:
            active -= 1

    feed.subscribe(callback)

    def publish_many(start: int) -> None:
        for i in range(start, start + 200):
            feed.publish(Change("update", "Dataplane", "default", "dp", i, i))

    threads = [threading.Thread(target=publish_many, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 800 and not overlap


def test_closed_feed_delivers_nothing() -> None:
    feed = InProcessFeed()
    rec = Recorder()
    feed.subscribe(rec)
    feed.close()
    feed.publish(CHANGE)
    assert rec.changes == []
