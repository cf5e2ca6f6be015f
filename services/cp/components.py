"""What `kuma-cp run` starts, in order. Each service adds its component here as it lands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kuma.config import KumaCpConfig
from kuma.wiring import Core, ensure_default_mesh, open_core


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class CoreComponent:
    """The store and change feed; on start, the default resources of spec §2.5."""

    name = "store and change feed"

    def __init__(self, cfg: KumaCpConfig):
        self.cfg = cfg
        self.core: Core = open_core(cfg, name="kuma-cp")

    def start(self) -> None:
        ensure_default_mesh(self.cfg, self.core.manager)

    def stop(self) -> None:
        self.core.close()


class WsgiComponent:
    """A WSGI app on an embedded production server (waitress) in a background thread. The app
    is built on start, after the components before it (the default Mesh, the admin token)."""

    def __init__(self, name: str, host: str, port: int, build_app: Callable[[], Any]):
        from kuma.edge.wsgi_server import ThreadedWsgiServer

        self.name = f"{name} on {host}:{port}"
        self._build_app = build_app
        self._server_class = ThreadedWsgiServer
        self._host, self._port = host, port
        self.server: ThreadedWsgiServer | None = None

    def start(self) -> None:
        app = self._build_app()
        self.server = self._server_class(app, self._host, self._port, name=self.name)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def api_component(cfg: KumaCpConfig, core: Core) -> WsgiComponent:
    from services.api.app import create_app

    return WsgiComponent(
        "API server", cfg.api_server.address, cfg.api_server.port, lambda: create_app(cfg, core)
    )


def gui_component(cfg: KumaCpConfig) -> WsgiComponent:
    """The GUI (5683), reading the API over HTTP at `guiServer.apiServerUrl` like any client."""
    from services.gui.app import create_app

    gui = cfg.gui_server
    return WsgiComponent(
        "GUI server",
        cfg.api_server.address,
        gui.port,
        lambda: create_app(gui.api_server_url, cfg.environment),
    )


def diagnostics_component(cfg: KumaCpConfig, core: Core) -> WsgiComponent:
    from kuma.edge.diagnostics import diagnostics_app

    return WsgiComponent(
        "diagnostics server",
        cfg.api_server.address,
        cfg.xds_server.diagnostics_port,
        lambda: diagnostics_app(core.store),
    )


class BootstrapComponent:
    """The bootstrap server: TLS and plain HTTP on one port (`kuma.edge.dual_listener`, on cheroot:
    waitress cannot do TLS), presenting the control plane's certificate."""

    def __init__(self, cfg: KumaCpConfig, core: Core, host: str = "0.0.0.0"):
        self.cfg, self.core, self._host = cfg, core, host
        self.name = f"bootstrap server on {host}:{cfg.bootstrap_server.port}"
        self.server: Any = None

    def start(self) -> None:
        from kuma import server_tls
        from kuma.edge.wsgi_server import DualProtocolWsgiServer
        from services.bootstrap.app import create_app

        app = create_app(self.cfg, self.core)
        certificate = server_tls.load(self.cfg, self.core.store)
        self.server = DualProtocolWsgiServer(
            app, self._host, self.cfg.bootstrap_server.port, certificate, name=self.name
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def bootstrap_component(cfg: KumaCpConfig, core: Core) -> BootstrapComponent:
    return BootstrapComponent(cfg, core)


class XdsComponent:
    """The xDS service on its own asyncio loop thread (grpc.aio)."""

    def __init__(self, cfg: KumaCpConfig, core: Core):
        self.name = f"xDS server on {cfg.xds_server.address}:{cfg.xds_server.grpc_port}"
        self.cfg, self.core = cfg, core
        self._loop: Any = None
        self._service: Any = None

    def start(self) -> None:
        from services.xds.loop_thread import LoopThread
        from services.xds.service import XdsService

        self._loop = LoopThread("xds")
        self._service = XdsService(self.cfg, self.core)
        self._loop.run(self._service.start())

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.run(self._service.stop())
            self._loop.close()


class HousekeepingComponent:
    """The worker's jobs (start-up defaults, liveness sweep, insight clean-up) on a thread,
    without nameko or RabbitMQ."""

    name = "housekeeping"

    def __init__(self, cfg: KumaCpConfig, core: Core):
        self.cfg, self.core = cfg, core
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        from services.worker.inprocess import start_housekeeping

        self._stop = start_housekeeping(self.core, self.cfg)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def build_components(cfg: KumaCpConfig) -> list[Component]:
    core = CoreComponent(cfg)
    return [
        core,
        HousekeepingComponent(cfg, core.core),
        api_component(cfg, core.core),
        gui_component(cfg),
        diagnostics_component(cfg, core.core),
        bootstrap_component(cfg, core.core),
        XdsComponent(cfg, core.core),
    ]
