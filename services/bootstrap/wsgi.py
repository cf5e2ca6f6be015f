"""The bootstrap process's WSGI application, as gunicorn loads it in each worker (after the fork,
so every worker opens its own store pool).

    gunicorn -c services/bootstrap/gunicorn.conf.py 'services.bootstrap.wsgi:application()'

`KUMA_CONFIG_FILE` names an optional kuma-cp YAML file; KUMA_* env vars apply as usual.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from kuma import server_tls
from kuma.config import KumaCpConfig, load_config
from kuma.wiring import Core, open_core
from services.bootstrap.app import create_app

CONFIG_FILE_ENV = "KUMA_CONFIG_FILE"


class BootstrapWsgi:
    """The Flask app plus the core it owns, closed by gunicorn's `worker_exit`."""

    def __init__(self, cfg: KumaCpConfig):
        self.cfg = cfg
        self.core: Core = open_core(cfg, name="kuma-bootstrap")
        try:
            self.app = create_app(cfg, self.core)
        except Exception:
            self.core.close()
            raise

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        return self.app(environ, start_response)

    def server_certificate(self) -> server_tls.ServerCertificate:
        """What `kuma.edge.gunicorn_dual.DualProtocolWorker` presents to TLS callers on 5682."""
        return server_tls.load(self.cfg, self.core.store)

    def close(self) -> None:
        self.core.close()


def load_bootstrap_config(config_file: str | None = None) -> KumaCpConfig:
    return load_config(config_file or os.environ.get(CONFIG_FILE_ENV) or None)


def application() -> BootstrapWsgi:
    """gunicorn's app factory: `services.bootstrap.wsgi:application()`."""
    return BootstrapWsgi(load_bootstrap_config())
