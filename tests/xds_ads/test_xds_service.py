"""The xDS service end to end on one process: store writes -> change feed -> reconciler ->
ADS -> a real Envoy carrying traffic; DataplaneInsight written from the stream."""

from __future__ import annotations

import time

import pytest

from kuma.wiring import Core
from services.xds.service import XdsService
from tests.apply import apply
from tests.waiting import wait_until
from tests.xds_ads.harness import Backend, Envoy, free_port, get

pytestmark = pytest.mark.envoy


def dataplane(name: str, service: str, dp_port: int, outbound: str = "") -> str:
    return f"""
type: Dataplane
mesh: default
name: {name}
networking:
  inbound:
  - interface: 127.0.0.1:{dp_port}:{free_port()}
    tags:
      service: {service}
{outbound}"""


def seed_pair(core: Core, xds: XdsService, redis_port: int) -> tuple[Envoy, int]:
    """The seed's redis-1 (its inbound address is where its endpoint is: `redis_port`) and
    backend-1 with an Envoy, whose outbound port to redis is returned."""
    out = free_port()
    apply(core, dataplane("redis-1", "redis", redis_port))
    outbound = f"  outbound:\n  - interface: :{out}\n    service: redis\n"
    apply(core, dataplane("backend-1", "backend", free_port(), outbound))
    return Envoy("default.backend-1", xds.port, ca_pem=xds.cert_pem), out


def test_seed_pair_traffic_and_live_changes(core, xds):
    a, b = Backend("A"), Backend("B")
    envoy = None
    try:
        envoy, out = seed_pair(core, xds, a.port)
        assert wait_until(lambda: get(out) == "A", 15, "traffic to redis through the outbound")

        # A new endpoint and the old one gone: the change reaches traffic without any timer.
        started = time.monotonic()
        apply(core, dataplane("redis-2", "redis", b.port))
        core.manager.delete("Dataplane", "default", "redis-1")
        wait_until(lambda: get(out) == "B", 10, "traffic moved to redis-2")
        assert time.monotonic() - started < 2.0

        # The stream is recorded as a DataplaneInsight subscription.
        def insight():
            spec = core.manager.get("DataplaneInsight", "default", "backend-1").spec
            sub = spec.subscriptions[0]
            return sub if sub.status.total.responses_acknowledged >= 3 else None

        sub = wait_until(insight, 10, "insight with ACKs")
        assert sub.connected and sub.control_plane_instance_id == xds.instance_id
        assert sub.status.cds.responses_sent >= 1 and sub.status.lds.responses_sent >= 1
    finally:
        if envoy is not None:
            envoy.stop()
        a.stop()
        b.stop()

    def disconnected():
        spec = core.manager.get("DataplaneInsight", "default", "backend-1").spec
        return not spec.is_online()

    wait_until(disconnected, 10, "subscription closed after Envoy stopped")


def test_unrelated_writes_do_not_regenerate(core, xds):
    a = Backend("A")
    envoy = None
    try:
        envoy, out = seed_pair(core, xds, a.port)
        wait_until(lambda: get(out) == "A", 15, "first config")
        time.sleep(0.5)
        rebuilds = xds.reconciler.stats.rebuilds
        # Insight flushes happen all the time; they must not rebuild the mesh.
        time.sleep(1.0)
        assert xds.reconciler.stats.rebuilds == rebuilds
        # A write to another mesh does not touch this one.
        apply(core, "type: Mesh\nname: other\n")
        time.sleep(0.3)
        assert xds.reconciler.stats.rebuilds == rebuilds
    finally:
        if envoy is not None:
            envoy.stop()
        a.stop()
