"""The scene of points 1-5 (one per module, shared by its tests): `kuma-cp run` with same-host
trust off, the default Mesh with mTLS (builtin CA) and a TrafficPermission backend -> web, and two
real Envoys through `kuma-dp run` with their tokens and the control plane's CA:

- the victim `default.web-1` (service web) in front of an HTTP workload answering "web-1";
- `default.backend-1` (service backend), whose outbound port reaches web through both Envoys.

`scene.check_victim()` is what "the victim keeps working" means: a new request through both
Envoys (mutual TLS, the permission's RBAC) is answered by the workload, web-1 still holds its
SPIFFE identity and its ADS stream, and its listeners are exactly those it had before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port
from tests.security.harness import ControlPlane, Dataplane, Processes, http_get, mtls_mesh
from tests.xds_ads.harness import Backend

# Bounds made small enough to reach in a test; the rest (names per request and subscription,
# message size, queue) keep their defaults.
STRICT_ENV = {
    "KUMA_GENERAL_TRUST_LOOPBACK": "false",
    "KUMA_XDS_SERVER_MAX_STREAMS": "64",
    "KUMA_XDS_SERVER_FIRST_REQUEST_TIMEOUT": "5s",
}


@dataclass
class WebAndBackend:
    """The default Mesh with mTLS and a TrafficPermission backend -> web; `web-1` in front of an
    HTTP workload answering "web-1", `backend-1` whose outbound port reaches web (registered,
    their kuma-dp not started)."""

    victim: Dataplane
    client: Dataplane
    outbound: int  # backend-1's outbound port to web
    workload: Backend

    @classmethod
    def register(cls, cp: ControlPlane) -> WebAndBackend:
        mtls_mesh(cp, [("backend", "web")])
        workload = Backend("web-1")
        outbound = free_port()
        victim = Dataplane(cp, "web-1", f"127.0.0.1:{free_port()}:{workload.port}", "web")
        client = Dataplane(
            cp,
            "backend-1",
            f"127.0.0.1:{free_port()}:{free_port()}",
            "backend",
            [(outbound, "web")],
        )
        return cls(victim, client, outbound, workload)

    def through_mesh(self) -> str:
        """A GET through backend-1's and web-1's Envoys, on a new connection ("" if refused)."""
        return http_get(f"http://127.0.0.1:{self.outbound}/")


@dataclass
class Scene(WebAndBackend):
    procs: Processes
    cp: ControlPlane
    baseline: list[Any]  # web-1's listeners once it was ready

    def check_victim(self) -> None:
        assert self.victim.proc.poll() is None, "the victim's kuma-dp exited"
        self.cp.wait_until(
            lambda: self.through_mesh() == "web-1", 10, "web-1 answering through the mesh"
        )
        assert self.victim.has_identity(), "web-1 lost its identity"
        stats = self.victim.admin("/stats?filter=control_plane.connected_state")
        assert "control_plane.connected_state: 1" in stats, stats
        assert self.victim.listeners() == self.baseline, "web-1's listeners changed"


def start_scene(tmp: Path, env: dict[str, str]) -> Scene:
    procs = Processes(tmp)
    try:
        cp = ControlPlane(procs, **env)
        cp.start()
        pair = WebAndBackend.register(cp)
        pair.victim.start()
        pair.client.start()
        pair.victim.wait_ready()
        pair.client.wait_ready()
        cp.wait_until(lambda: pair.through_mesh() == "web-1", 30, "web-1 through the mesh")
        return Scene(**vars(pair), procs=procs, cp=cp, baseline=pair.victim.listeners())
    except BaseException:
        print(procs.logs())
        procs.stop_all()
        raise


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = start_scene(tmp_path_factory.mktemp("scene"), STRICT_ENV)
    yield s
    s.procs.stop_all()


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print every process's log when the test failed (pytest shows it with the failure)."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for name in ("scene", "first_impostor"):
            if name in request.fixturenames:
                print(request.getfixturevalue(name).procs.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ARG001
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
