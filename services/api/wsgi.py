"""The API process's WSGI application, as gunicorn loads it in each worker (after the fork, so
every worker opens its own store pool and change feed).

    gunicorn -c services/api/gunicorn.conf.py 'services.api.wsgi:application()'

`KUMA_CONFIG_FILE` names an optional kuma-cp YAML file; KUMA_* env vars apply as usual. One
gunicorn serves both ports: requests that arrived on `xdsServer.diagnosticsPort` go to the
diagnostics app, all others to the API.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from kuma.config import KumaCpConfig, autoconfigure, load_config
from kuma.edge.diagnostics import StartResponse, WsgiApp, diagnostics_app
from kuma.wiring import Core, ensure_default_mesh, open_core
from services.api.app import create_app

log = logging.getLogger(__name__)
CONFIG_FILE_ENV = "KUMA_CONFIG_FILE"


class PortDispatcher:
    """Route each request by the port it arrived on (gunicorn's SERVER_PORT is the listener's)."""

    def __init__(self, api: WsgiApp, diagnostics: WsgiApp, diagnostics_port: int, core: Core):
        self.api = api
        self.diagnostics = diagnostics
        self.diagnostics_port = str(diagnostics_port)
        self.core = core

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("SERVER_PORT") == self.diagnostics_port:
            return self.diagnostics(environ, start_response)
        return self.api(environ, start_response)

    def close(self) -> None:
        self.core.close()


def build_wsgi_app(cfg: KumaCpConfig) -> PortDispatcher:
    """Open the core, make sure the default resources exist, and build both apps."""
    cfg = autoconfigure(cfg)
    core = open_core(cfg, name="kuma-api")
    try:
        ensure_default_mesh(cfg, core.manager)
        api = create_app(cfg, core)
    except Exception:
        core.close()
        raise
    return PortDispatcher(api, diagnostics_app(core.store), cfg.xds_server.diagnostics_port, core)


def load_api_config(config_file: str | None = None) -> KumaCpConfig:
    return load_config(config_file or os.environ.get(CONFIG_FILE_ENV) or None)


def application() -> PortDispatcher:
    """gunicorn's app factory: `services.api.wsgi:application()`."""
    return build_wsgi_app(load_api_config())
