"""The change feed between processes: Redis pub/sub on one channel.

Pub/sub is fire-and-forget: a message published while a listener is disconnected is gone. So
after every reconnect the listener delivers a RESYNC, and the revision poll (WatchedFeed) covers
publishes that never reached Redis. Redis trouble costs latency, never correctness, and never
blocks or fails a writer.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.retry import Retry

from kuma.events.change import Change
from kuma.events.feed import Callback, Fanout, Subscription

log = logging.getLogger(__name__)

# How long get_message waits: bounds how quickly close() and the health check react.
_POLL_SECONDS = 0.1


def _no_retry() -> Retry:
    # redis-py retries with back-off by default (seconds of blocking) and, on a pub/sub
    # connection, silently re-subscribes: both hide an outage we must see.
    return Retry(NoBackoff(), 0)


class RedisFeed:
    """`PUBLISH channel <change json>`, and a listener thread delivering the channel to
    subscribers.

    - `publish` never raises and is bounded by `connect_timeout`; after a failure it skips
      publishing for `publish_pause` seconds (no connect attempt per write while Redis is down).
    - The listener reconnects with exponential back-off capped at `max_backoff`; it pings every
      `health_interval` and treats `2 * health_interval` of silence as a dead connection.
    - The constructor waits up to `ready_timeout` for the first subscription. Every later
      (re)subscription delivers `Change.resync(0)`: messages may have been missed meanwhile.
    - The listener connection is named `client_name` (`CLIENT LIST` shows it).
    """

    def __init__(
        self,
        url: str,
        channel: str,
        *,
        client_name: str | None = None,
        connect_timeout: float = 1.0,
        max_backoff: float = 3.0,
        health_interval: float = 5.0,
        publish_pause: float = 1.0,
        ready_timeout: float | None = None,
    ) -> None:
        self.url = url
        self.channel = channel
        self.client_name = client_name or f"kuma-feed-{uuid.uuid4().hex[:12]}"
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._health_interval = health_interval
        self._publish_pause = publish_pause
        self._fanout = Fanout()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()  # the listener holds a live subscription now
        self._ever_subscribed = False
        self._missed_startup = False
        self._publish_paused_until = 0.0
        self._publish_failing = False
        self._publisher = redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=connect_timeout,
            retry=_no_retry(),
        )
        self._thread = threading.Thread(target=self._run, name=f"redis-feed:{channel}", daemon=True)
        self._thread.start()
        wait = connect_timeout if ready_timeout is None else ready_timeout
        if not self._subscribed.wait(wait):
            with self._lock:
                # Not listening yet: whatever is published until we are is missed.
                self._missed_startup = not self._ever_subscribed
            log.warning("change feed: Redis %s not reachable yet; will keep trying", channel)

    @property
    def connected(self) -> bool:
        """Whether the listener currently holds a subscription (for readiness checks)."""
        return self._subscribed.is_set()

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, change: Change) -> None:
        if self._stop.is_set() or time.monotonic() < self._publish_paused_until:
            return
        try:
            self._publisher.publish(self.channel, change.to_json())
        except (redis.RedisError, OSError) as exc:
            self._publish_paused_until = time.monotonic() + self._publish_pause
            if not self._publish_failing:
                log.warning("change feed: publish to Redis failed (%s); relying on resync", exc)
            self._publish_failing = True
            return
        if self._publish_failing:
            self._publish_failing = False
            log.info("change feed: publishing to Redis again")

    # --- subscribing --------------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Subscription:
        return self._fanout.add(callback)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=_POLL_SECONDS * 4 + self._connect_timeout)
        self._fanout.clear()
        self._publisher.close()

    # --- the listener thread ------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            client = redis.Redis.from_url(
                self.url,
                socket_connect_timeout=self._connect_timeout,
                socket_timeout=self._health_interval,
                client_name=self.client_name,
                retry=_no_retry(),
            )
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                if self._listen(pubsub):
                    backoff = 0.05  # it worked for a while: retry promptly next time
            except (redis.RedisError, OSError) as exc:
                log.warning("change feed: Redis listener disconnected (%s)", exc)
            except Exception:
                # A bug must not end delivery for the life of the process.
                log.exception("change feed: Redis listener failed")
            finally:
                self._subscribed.clear()
                for closable in (pubsub, client):
                    try:
                        closable.close()
                    except Exception:
                        log.debug("change feed: error closing Redis connection", exc_info=True)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._max_backoff)

    def _listen(self, pubsub: PubSub) -> bool:
        """Deliver messages until closed (returns) or the connection fails (raises).

        Returns whether the subscription was ever confirmed on this connection."""
        confirmed = False
        last_heard = last_ping = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=_POLL_SECONDS)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                kind = message["type"]
                if kind == "subscribe" and not confirmed:
                    confirmed = True
                    self._on_subscribed()
                elif kind == "message":
                    self._on_message(message["data"])
            if now - last_ping >= self._health_interval:
                pubsub.ping()  # the "pong" reply counts as hearing from Redis
                last_ping = now
            if now - last_heard > 2 * self._health_interval:
                raise redis.ConnectionError("no reply from Redis")
        return confirmed

    def _on_subscribed(self) -> None:
        with self._lock:
            missed = self._ever_subscribed or self._missed_startup
            self._ever_subscribed = True
            self._subscribed.set()
        if missed:
            log.info("change feed: Redis listener resubscribed; asking subscribers to resync")
            self._fanout.deliver(Change.resync(0))

    def _on_message(self, data: bytes) -> None:
        try:
            change = Change.from_json(data)
        except ValueError as exc:
            log.warning("change feed: ignoring malformed message %.200r (%s)", data, exc)
            return
        self._fanout.deliver(change)
