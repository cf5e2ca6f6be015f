"""The injector's WSGI application, as gunicorn loads it in each worker.

    gunicorn -c services/injector/gunicorn.conf.py 'services.injector.wsgi:application()'

`KUMA_INJECTOR_CONFIG_FILE` names an optional injector YAML file; KUMA_INJECTOR_* env vars apply.
Meshes are looked up through the control plane's API (`injector.controlPlane.apiServer.url`).
"""

from __future__ import annotations

import os

from flask import Flask

from services.injector.app import create_app
from services.injector.config import CONFIG_FILE_ENV, InjectorConfig, load_injector_config
from services.injector.meshes import ApiMeshLookup


def load_config(config_file: str | None = None) -> InjectorConfig:
    return load_injector_config(config_file or os.environ.get(CONFIG_FILE_ENV) or None)


def build_app(cfg: InjectorConfig) -> Flask:
    return create_app(cfg, ApiMeshLookup(cfg.injector.control_plane.api_server.url))


def application() -> Flask:
    """gunicorn's app factory: `services.injector.wsgi:application()`."""
    return build_app(load_config())
