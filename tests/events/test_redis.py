"""RedisFeed against the machine's Redis; a TCP proxy plays the network for outage tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import redis

from kuma.events import Change, PublishingStore, RedisFeed, WatchedFeed
from kuma.store.memory import MemoryStore
from tests.conftest import REDIS_URL
from tests.unit.events.helpers import Recorder, dataplane, mesh
from tests.waiting import wait_until

from .proxy import TcpProxy

pytestmark = pytest.mark.redis

# Short timeouts keep outage tests fast; production defaults are seconds.
FAST: dict[str, Any] = {
    "connect_timeout": 0.3,
    "max_backoff": 0.2,
    "health_interval": 0.5,
    "publish_pause": 0.2,
}
POLL = 0.2


def change(name: str, revision: int = 1) -> Change:
    return Change("create", "Dataplane", "default", name, 1, revision)


@pytest.fixture()
def channel(redis_prefix: str) -> str:
    return redis_prefix + "changes"


@pytest.fixture()
def make_feed(channel: str) -> Iterator[Callable[..., RedisFeed]]:
    feeds: list[RedisFeed] = []

    def make(url: str = REDIS_URL, **options: Any) -> RedisFeed:
        feed = RedisFeed(url, options.pop("channel", channel), **{**FAST, **options})
        feeds.append(feed)
        return feed

    yield make
    for feed in feeds:
        feed.close()


@pytest.fixture()
def admin() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture()
def proxy() -> Iterator[TcpProxy]:
    target = urlparse(REDIS_URL)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 6379))
    proxy.start()
    yield proxy
    proxy.close()


def kill_client(admin: redis.Redis, name: str) -> None:
    ids = [c["id"] for c in admin.client_list() if c.get("name") == name]
    assert ids, f"no Redis client named {name}"
    for client_id in ids:
        admin.client_kill_filter(_id=client_id)


def test_change_published_by_one_feed_reaches_the_other(make_feed) -> None:
    a, b = make_feed(), make_feed()
    assert a.connected and b.connected
    got_a, got_b = Recorder(), Recorder()
    a.subscribe(got_a)
    b.subscribe(got_b)
    a.publish(change("dp-1"))
    b.publish(change("dp-2", 2))
    assert wait_until(lambda: got_b.names() == ["dp-1", "dp-2"], timeout=2.0)
    assert wait_until(lambda: got_a.names() == ["dp-1", "dp-2"], timeout=2.0)
    assert got_a.resyncs == got_b.resyncs == []


def test_malformed_message_is_ignored(make_feed, admin, channel, caplog) -> None:
    a, b = make_feed(), make_feed()
    got = Recorder()
    b.subscribe(got)
    admin.publish(channel, b"\x00not json")
    admin.publish(channel, b'{"op":"create"}')
    a.publish(change("dp-1"))
    assert wait_until(lambda: got.names() == ["dp-1"], timeout=2.0)
    assert "malformed" in caplog.text
    assert b.connected


def test_feeds_on_other_channels_hear_nothing(make_feed, redis_prefix) -> None:
    a = make_feed()
    other = make_feed(channel=redis_prefix + "other")
    got, here = Recorder(), Recorder()
    other.subscribe(got)
    a.subscribe(here)
    a.publish(change("dp-1"))
    assert wait_until(lambda: here.names() == ["dp-1"], timeout=2.0)
    assert got.changes == []


def test_killed_listener_reconnects_resyncs_and_recovers(make_feed, admin) -> None:
    a, b = make_feed(), make_feed(client_name="kuma-test-listener")
    got = Recorder()
    b.subscribe(got)
    kill_client(admin, "kuma-test-listener")
    assert wait_until(lambda: len(got.resyncs) == 1, timeout=3.0)
    assert got.resyncs[0].revision == 0  # the feed cannot know the store revision
    a.publish(change("after"))
    assert wait_until(lambda: got.names() == ["after"], timeout=2.0)


def test_subscriber_that_misses_messages_still_sees_every_change(make_feed, proxy) -> None:
    """The "no lost change" guarantee end to end: writer and subscriber on separate Redis
    connections; the subscriber's connection goes away while writes happen."""
    base = MemoryStore()
    writer = PublishingStore(base, make_feed())
    watched = WatchedFeed(make_feed(proxy.url), base.revision, POLL, close_feed=False)
    got = Recorder()
    watched.subscribe(got)
    try:
        writer.create(mesh())
        assert wait_until(lambda: got.names() == ["default"], timeout=2.0)

        proxy.stop()  # Redis is gone for the subscriber only
        writer.create(dataplane("dp-1"))
        writer.update(writer.get("Dataplane", "default", "dp-1"))
        target = base.revision()
        started = time.monotonic()
        # Redis is still unreachable for the subscriber: only the poll can tell it.
        assert wait_until(lambda: any(c.revision >= target for c in got.resyncs), timeout=3.0)
        assert time.monotonic() - started < 2 * POLL + 0.5  # interval + grace + margin
        assert got.names() == ["default"]

        proxy.start()  # back: the listener resubscribes (and resyncs), then changes flow
        count = len(got.resyncs)
        assert wait_until(lambda: len(got.resyncs) > count, timeout=3.0)
        writer.create(dataplane("dp-2"))
        assert wait_until(lambda: got.names() == ["default", "dp-2"], timeout=2.0)
    finally:
        watched.close()


def test_publish_while_redis_is_gone_is_quick_and_quiet(make_feed, proxy, caplog) -> None:
    writer = make_feed(proxy.url)
    reader = make_feed()
    got = Recorder()
    reader.subscribe(got)
    proxy.stop()
    started = time.monotonic()
    for i in range(20):
        writer.publish(change(f"lost-{i}"))  # never raises
    assert time.monotonic() - started < FAST["connect_timeout"] + 0.5
    assert "publish to Redis failed" in caplog.text
    proxy.start()
    # After the pause, publishing resumes on its own.
    assert wait_until(
        lambda: (writer.publish(change("back")), "back" in got.names())[1], timeout=3.0
    )


def test_black_holed_connection_is_detected(make_feed, proxy) -> None:
    writer = make_feed()
    reader = make_feed(proxy.url, health_interval=0.2)
    got = Recorder()
    reader.subscribe(got)
    proxy.freeze()  # the socket stays open but nothing comes back
    assert wait_until(lambda: not reader.connected, timeout=3.0)
    proxy.thaw()
    assert wait_until(lambda: reader.connected and len(got.resyncs) == 1, timeout=3.0)
    writer.publish(change("dp-1"))
    assert wait_until(lambda: got.names() == ["dp-1"], timeout=2.0)


def test_redis_down_at_start_then_up(make_feed, proxy) -> None:
    proxy.stop()
    started = time.monotonic()
    feed = make_feed(proxy.url, ready_timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert not feed.connected
    got = Recorder()
    feed.subscribe(got)
    feed.publish(change("nowhere"))  # no error
    proxy.start()
    # It missed whatever was published meanwhile: subscribers are told to resync.
    assert wait_until(lambda: feed.connected and len(got.resyncs) == 1, timeout=3.0)


def test_close_is_prompt_even_when_redis_is_unreachable(proxy) -> None:
    proxy.stop()
    feed = RedisFeed(proxy.url, "unused", **FAST, ready_timeout=0.1)
    started = time.monotonic()
    feed.close()
    assert time.monotonic() - started < 1.5
    assert not feed._thread.is_alive()
