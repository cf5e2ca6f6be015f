"""gunicorn settings of the API service (DESIGN §1: Flask under gunicorn, gthread workers).

Binds the API port and the diagnostics port from the kuma config (`KUMA_CONFIG_FILE`, KUMA_*
env), unless `--bind` is given. Workers and threads: `apiServer.workers` (KUMA_API_WORKERS,
default 0: one per CPU) and `apiServer.threads` (KUMA_API_THREADS, default 8).
"""

import os

from kuma.config import load_config
from kuma.edge.gunicorn_settings import *  # noqa: F403 (the settings every service shares)
from kuma.edge.gunicorn_settings import processes

_cfg = load_config(os.environ.get("KUMA_CONFIG_FILE") or None)

bind = [
    f"{_cfg.api_server.address}:{_cfg.api_server.port}",
    f"{_cfg.api_server.address}:{_cfg.xds_server.diagnostics_port}",
]
workers = processes(_cfg.api_server.workers)
threads = _cfg.api_server.threads
proc_name = "kuma-api"
