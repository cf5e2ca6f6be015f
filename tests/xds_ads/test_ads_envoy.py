"""The ADS protocol against a real Envoy 1.40, state of the world and delta."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from services.xds.ads import types
from tests.xds_ads.harness import (
    AdsServerThread,
    Backend,
    Envoy,
    free_port,
    get,
    tcp_config,
    wait_until,
)

pytestmark = pytest.mark.envoy

NODE = "default.backend-1"


@pytest.fixture()
def ads() -> Iterator[AdsServerThread]:
    server = AdsServerThread()
    yield server
    server.stop()


@pytest.fixture()
def backends() -> Iterator[tuple[Backend, Backend]]:
    a, b = Backend("A"), Backend("B")
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(params=[False, True], ids=["sotw", "delta"])
def envoy_factory(request: pytest.FixtureRequest, ads: AdsServerThread) -> Iterator:
    started: list[Envoy] = []

    def start(ads_port: int, node: str = NODE) -> Envoy:
        envoy = Envoy(node, ads_port, delta=request.param)
        started.append(envoy)
        return envoy

    yield start
    for envoy in started:
        print(envoy.stop()[-4000:])  # shown by pytest only when the test failed


def test_config_reaches_envoy_and_changes_apply(ads, backends, envoy_factory):
    a, b = backends
    port = free_port()
    ads.set(NODE, tcp_config(port, a.port))
    envoy_factory(ads.port)
    assert wait_until(lambda: get(port) == "A", what="traffic through the listener")
    # Every type was sent once and acknowledged, nothing rejected.
    for type_url in (types.CLUSTER, types.ENDPOINT, types.LISTENER):
        wait_until(lambda t=type_url: ads.callbacks.count("ack", t) >= 1, what=f"ACK {type_url}")
    assert ads.callbacks.count("nack") == 0
    # An endpoint change reaches traffic.
    ads.set(NODE, tcp_config(port, b.port))
    assert wait_until(lambda: get(port) == "B", what="traffic to the new endpoint")


def test_cluster_change_does_not_stall(ads, backends, envoy_factory):
    """A changed cluster makes Envoy re-ask EDS with its last ACK; the answer must come now."""
    a, b = backends
    port = free_port()
    ads.set(NODE, tcp_config(port, a.port))
    envoy_factory(ads.port)
    wait_until(lambda: get(port) == "A", what="first config")
    config = tcp_config(port, b.port)
    cluster = config[types.CLUSTER]["backend"]
    cluster.connect_timeout.seconds = 2  # a cluster change forces warming
    started = time.monotonic()
    ads.set(NODE, config)
    wait_until(lambda: get(port) == "B", what="traffic after the cluster change")
    assert time.monotonic() - started < 3, "cluster warming stalled"


def test_nack_is_recorded_not_looped_and_traffic_keeps_flowing(ads, backends, envoy_factory):
    a, _ = backends
    port = free_port()
    ads.set(NODE, tcp_config(port, a.port))
    envoy_factory(ads.port)
    wait_until(lambda: get(port) == "A", what="first config")
    ads.set(NODE, tcp_config(port, a.port, stat_prefix=""))  # invalid: empty stat_prefix
    nack = wait_until(
        lambda: next((e for e in ads.callbacks.events if e[0] == "nack"), None), what="NACK"
    )
    assert nack[1] == types.LISTENER
    assert "stat_prefix" in nack[2].lower() or "statprefix" in nack[2].lower()
    sent = ads.callbacks.count("response", types.LISTENER)
    time.sleep(1.0)
    assert ads.callbacks.count("response", types.LISTENER) == sent, "NACK answered in a loop"
    assert get(port) == "A"


def test_unknown_dataplane_waits_then_gets_config(ads, backends, envoy_factory):
    a, _ = backends
    port = free_port()
    envoy_factory(ads.port)
    wait_until(lambda: ads.callbacks.count("open") == 1, what="stream open")
    assert ads.callbacks.count("response") == 0
    ads.set(NODE, tcp_config(port, a.port))
    assert wait_until(lambda: get(port) == "A", what="config after the Dataplane appeared")


def test_deleted_dataplane_gets_empty_config(ads, backends, envoy_factory):
    a, _ = backends
    port = free_port()
    ads.set(NODE, tcp_config(port, a.port))
    envoy = envoy_factory(ads.port)
    wait_until(lambda: get(port) == "A", what="first config")
    ads.set(NODE, {})

    def listener_gone() -> bool:
        dump = envoy.config_dump()
        listeners = [c for c in dump.get("configs", []) if "ListenersConfigDump" in c["@type"]]
        # A removed listener may linger in draining_state; none may stay active.
        return not any("active_state" in d for d in listeners[0].get("dynamic_listeners", []))

    wait_until(listener_gone, what="listener removed")
    with pytest.raises(OSError):
        get(port)
