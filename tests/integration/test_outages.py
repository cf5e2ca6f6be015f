"""Outages of the shared servers under the split services (DESIGN §3 "No lost change"): Redis
stopped and restarted, Postgres stopped and restarted. Each scenario runs its own private
redis-server or Postgres cluster, so that stopping it disturbs nothing else, and holds an ADS
stream open to each xDS replica the whole time. Our services are never restarted: they must
recover by themselves. The observed times are printed and kept as test properties."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
import requests

from tests.integration.ads_watch import AdsWatcher
from tests.integration.topology import (
    API,
    API_HOST,
    XDS_HOSTS,
    PrivatePostgres,
    PrivateRedis,
    Topology,
    wait_until,
)

pytestmark = pytest.mark.slow

READY = f"http://{API_HOST}:5680/ready"
HEALTH_CHECK_PATH = "/meshes/default/health-checks/backend-checks"

Record = Callable[[str, object], None]


def put(path: str, body: dict[str, Any], timeout: float = 30) -> requests.Response:
    return requests.put(f"{API}{path}", json=body, timeout=timeout)


def dataplane(index: int) -> dict[str, Any]:
    name = f"web-{index}"
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "inbound": [
                {"interface": f"127.0.0.1:{20000 + index}:8080", "tags": {"service": "web"}}
            ],
            "outbound": [{"interface": f":{30000 + index}", "service": "backend"}],
        },
    }


def health_check(interval_seconds: int) -> dict[str, Any]:
    return {
        "type": "HealthCheck",
        "mesh": "default",
        "name": "backend-checks",
        "sources": [{"match": {"service": "*"}}],
        "destinations": [{"match": {"service": "backend"}}],
        "conf": {
            "activeChecks": {
                "interval": f"{interval_seconds}s",
                "timeout": "1s",
                "unhealthyThreshold": 3,
                "healthyThreshold": 1,
            }
        },
    }


def interval_seen(watcher: AdsWatcher) -> int | None:
    """The health-check interval (seconds) on the `backend` cluster the client holds."""
    cluster = watcher.clusters.get("backend")
    if cluster is None or not cluster.health_checks:
        return None
    return int(cluster.health_checks[0].interval.seconds)


def has_cluster(watcher: AdsWatcher, name: str) -> bool:
    return name in watcher.clusters


def holds_interval(watcher: AdsWatcher, seconds: int) -> bool:
    return interval_seen(watcher) == seconds


@contextmanager
def watchers_of_both_replicas(topology: Topology) -> Iterator[list[AdsWatcher]]:
    """Dataplanes web-0 and web-1 (written through the API), and an ADS stream for each, web-i
    on replica i; both hold their first config on return."""
    for i in range(len(XDS_HOSTS)):
        response = put(f"/meshes/default/dataplanes/web-{i}", dataplane(i))
        assert response.status_code in (200, 201), response.text
    watchers = [
        AdsWatcher(f"{host}:5678", f"default.web-{i}", topology.ca_pem)
        for i, host in enumerate(XDS_HOSTS)
    ]
    try:
        for host, w in zip(XDS_HOSTS, watchers, strict=True):
            wait_until(partial(has_cluster, w, "backend"), 30, f"first config from {host}")
        yield watchers
    finally:
        for w in watchers:
            w.close()


def apply_and_time(watchers: list[AdsWatcher], interval: int, timeout: float) -> float:
    """PUT the health check with `interval`; seconds until both replicas' clients hold it."""
    response = put(HEALTH_CHECK_PATH, health_check(interval))
    assert response.status_code in (200, 201), response.text
    written = time.monotonic()
    for host, w in zip(XDS_HOSTS, watchers, strict=True):
        wait_until(
            partial(holds_interval, w, interval),
            timeout,
            f"interval {interval}s on the client of replica {host}",
        )
    return time.monotonic() - written


def assert_streams_open(watchers: list[AdsWatcher]) -> None:
    for host, w in zip(XDS_HOSTS, watchers, strict=True):
        assert w.ended is None, f"the ADS stream to {host} ended: {w.ended}"


def assert_all_running(topology: Topology) -> None:
    assert not topology.dead(), f"processes exited by themselves: {topology.dead()}"


def subscribers(server: PrivateRedis, channel: str) -> int:
    with server.client() as client:
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])


@pytest.fixture()
def record(record_property: Record) -> Record:
    def both(name: str, value: object) -> None:
        print(f"observed: {name} = {value}")
        record_property(name, value)

    return both


def test_redis_stopped_then_restarted(
    topology_on_private_redis: Topology, private_redis: PrivateRedis, record: Record
):
    topology, channel = topology_on_private_redis, "kuma:changes"
    with watchers_of_both_replicas(topology) as watchers:
        # Every feed holds its subscription: at least both replicas' listeners.
        listening = wait_until(lambda: subscribers(private_redis, channel), 10, "subscribers")
        assert listening >= len(XDS_HOSTS)

        # Redis gone: a write still reaches the clients of both replicas (revision poll).
        private_redis.stop()
        stopped = time.monotonic()
        took = apply_and_time(watchers, 7, timeout=20)
        record("change_without_redis_s", round(took, 2))
        assert took < 10, f"a change took {took:.1f}s to arrive without Redis"
        assert_streams_open(watchers)
        assert_all_running(topology)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - stopped)))  # a few failed reconnects

        # Redis back on the same port: every listener subscribes again by itself...
        private_redis.start()
        restarted = time.monotonic()
        wait_until(
            lambda: subscribers(private_redis, channel) >= listening,
            20,
            f"{listening} subscribers again",
        )
        record("feed_resubscribed_s", round(time.monotonic() - restarted, 2))

        # ...and a write is published on Redis again and reaches both replicas' clients.
        with private_redis.client() as client, client.pubsub() as feed:
            feed.subscribe(channel)
            took = apply_and_time(watchers, 9, timeout=20)
            record("change_after_redis_restart_s", round(took, 2))
            published = wait_until(
                lambda: _message_about(feed, "backend-checks"), 10, "the change on Redis"
            )
            assert published["op"] == "update"
        assert interval_seen(watchers[0]) == interval_seen(watchers[1]) == 9
        assert_streams_open(watchers)
    assert_all_running(topology)


def _message_about(feed: Any, name: str) -> dict[str, Any] | None:
    message = feed.get_message(timeout=0.5)
    if message is None or message["type"] != "message":
        return None
    change: dict[str, Any] = json.loads(message["data"])
    return change if change["name"] == name else None


def test_postgres_stopped_then_restarted(
    topology_on_private_postgres: Topology, private_postgres: PrivatePostgres, record: Record
):
    topology = topology_on_private_postgres
    with watchers_of_both_replicas(topology) as watchers:
        took = apply_and_time(watchers, 7, timeout=15)
        record("change_before_outage_s", round(took, 2))
        updates = [w.updates for w in watchers]

        private_postgres.stop("fast")
        stopped = time.monotonic()

        # The API says it is not ready...
        wait_until(lambda: requests.get(READY, timeout=15).status_code == 503, 20, "/ready 503")
        record("ready_503_after_stop_s", round(time.monotonic() - stopped, 2))

        # ...and answers reads and writes with a 5xx in Kuma's error shape, promptly.
        for method, body in (("GET", None), ("PUT", health_check(8))):
            started = time.monotonic()
            response = requests.request(method, f"{API}{HEALTH_CHECK_PATH}", json=body, timeout=30)
            elapsed = time.monotonic() - started
            record(f"{method.lower()}_without_postgres_s", round(elapsed, 2))
            assert 500 <= response.status_code < 600, (method, response.status_code, response.text)
            error = response.json()
            assert isinstance(error.get("title"), str) and error["title"], error
            assert isinstance(error.get("details"), str) and error["details"], error
            assert elapsed < 15, f"{method} took {elapsed:.1f}s without Postgres"

        # The xDS replicas stay up and their clients keep their config.
        for host in XDS_HOSTS:
            assert requests.get(f"http://{host}:5680/healthy", timeout=10).status_code == 200
        time.sleep(max(0.0, 4.0 - (time.monotonic() - stopped)))  # a few failed polls
        assert_streams_open(watchers)
        assert [interval_seen(w) for w in watchers] == [7, 7]
        assert [w.updates for w in watchers] == updates, "config changed while the store was down"
        assert_all_running(topology)

        # Postgres back on the same port and data: the API gets ready by itself...
        private_postgres.start()
        restarted = time.monotonic()
        wait_until(lambda: requests.get(READY, timeout=15).status_code == 200, 30, "/ready 200")
        recovered = time.monotonic() - restarted
        record("ready_200_after_restart_s", round(recovered, 2))
        # Not the pool's reconnection back-off, which grows with the outage's length.
        assert recovered < 10, f"/ready took {recovered:.1f}s to recover"

        # ...writes work again and reach both replicas' clients.
        took = apply_and_time(watchers, 9, timeout=20)
        record("change_after_postgres_restart_s", round(took, 2))
        assert_streams_open(watchers)
    assert_all_running(topology)
