"""The change feed: every committed write is announced, and nothing announced can be lost for
good (DESIGN §3 "Write path", "No lost change").

Composition (one place per process):
    feed = WatchedFeed(RedisFeed(url, channel), store.revision, interval=5.0)  # or InProcessFeed()
    store = PublishingStore(store, feed)
    sub = feed.subscribe(on_change)  # then read the store; later: re-read on each Change/RESYNC
"""

from kuma.events.change import OPS, RESYNC, Change, Op
from kuma.events.feed import Callback, ChangeFeed, Fanout, Subscription
from kuma.events.memory import InProcessFeed
from kuma.events.poll import RevisionWatcher, WatchedFeed
from kuma.events.publishing import PublishingStore
from kuma.events.redis import RedisFeed

__all__ = [
    "OPS",
    "RESYNC",
    "Callback",
    "Change",
    "ChangeFeed",
    "Fanout",
    "InProcessFeed",
    "Op",
    "PublishingStore",
    "RedisFeed",
    "RevisionWatcher",
    "Subscription",
    "WatchedFeed",
]
