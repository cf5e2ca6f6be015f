"""An xDS service (with its SDS server on a free port) on the shared test loop, and a web ->
backend pair of real Envoys with tokens, over a memory store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest

from kuma import tokens
from kuma.config import KumaCpConfig, load_config
from kuma.wiring import Core
from services.xds.service import XdsService
from tests.apply import apply
from tests.mtls.harness import Echo, Envoy, dataplane, set_mtls
from tests.xds_ads.conftest import core, xds  # noqa: F401 (the same fixtures, over this cfg)
from tests.xds_ads.harness import free_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lifetime(seconds, percent): workload certificate lifetime")
    config.addinivalue_line(
        "markers", "trust_loopback: trust token-less streams from this host (off by default here)"
    )


@pytest.fixture()
def cfg(request: pytest.FixtureRequest) -> KumaCpConfig:
    base = load_config(env={})
    marker = request.node.get_closest_marker("lifetime")
    lifetime, percent = marker.args if marker else (3600, 80)
    return replace(
        base,
        xds_server=replace(
            base.xds_server,
            grpc_port=0,
            address="127.0.0.1",
            dataplane_status_flush_interval=timedelta(milliseconds=200),
        ),
        sds_server=replace(
            base.sds_server,
            grpc_port=0,
            certificate_lifetime=timedelta(seconds=lifetime),
            certificate_rotation_percent=percent,
        ),
        change_feed=replace(base.change_feed, debounce=timedelta(milliseconds=10)),
        # Every test Envoy runs on loopback: tokens are checked unless a test says otherwise.
        general=replace(
            base.general,
            trust_loopback=request.node.get_closest_marker("trust_loopback") is not None,
        ),
    )


@dataclass
class Pair:
    """web-1 calls backend-1 through its outbound `out`; backend-1's inbound is `inbound`."""

    web: Envoy
    backend: Envoy
    echo: Echo
    out: int
    inbound: int


@pytest.fixture()
def pair(core: Core, xds: XdsService) -> Iterator[Pair]:  # noqa: F811 (the fixtures)
    set_mtls(core, True)
    echo = Echo("backend")
    out, inbound = free_port(), free_port()
    apply(core, dataplane("backend-1", "backend", inbound, echo.port))
    outbound = f"  outbound:\n  - interface: :{out}\n    service: backend\n"
    apply(core, dataplane("web-1", "web", free_port(), free_port(), outbound))
    web = Envoy("default", "web-1", xds, tokens.issue(core.store, "default", "web-1"))
    backend = Envoy(
        "default",
        "backend-1",
        xds,
        tokens.issue(core.store, "default", "backend-1"),
        header=True,
    )
    try:
        yield Pair(web, backend, echo, out, inbound)
    finally:
        web.stop()
        backend.stop()
        echo.stop()
