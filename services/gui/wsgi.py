"""The GUI process's WSGI application, as gunicorn loads it (`kuma-gui`):

    gunicorn -c services/gui/gunicorn.conf.py 'services.gui.wsgi:application()'

`KUMA_CONFIG_FILE` names an optional kuma-cp YAML file; KUMA_* env vars apply as usual. The API
is `guiServer.apiServerUrl` (KUMA_GUI_SERVER_API_SERVER_URL, e.g. http://api:5681 in compose),
else this host's `apiServer.port`.
"""

from __future__ import annotations

import os

from flask import Flask

from kuma.config import KumaCpConfig, load_config
from services.gui.app import create_app

CONFIG_FILE_ENV = "KUMA_CONFIG_FILE"


def load_gui_config(config_file: str | None = None) -> KumaCpConfig:
    return load_config(config_file or os.environ.get(CONFIG_FILE_ENV) or None)


def api_url(cfg: KumaCpConfig) -> str:
    return cfg.gui_server.api_server_url or f"http://localhost:{cfg.api_server.port}"


def build_wsgi_app(cfg: KumaCpConfig) -> Flask:
    return create_app(api_url(cfg), cfg.environment)


def application() -> Flask:
    """gunicorn's app factory: `services.gui.wsgi:application()`."""
    return build_wsgi_app(load_gui_config())
