"""gunicorn settings of the API service (DESIGN §1: Flask under gunicorn, gthread workers).

Binds the API port and the diagnostics port from the kuma config (`KUMA_CONFIG_FILE`, KUMA_*
env), unless `--bind` is given. Workers and threads: KUMA_API_WORKERS (default: CPU count),
KUMA_API_THREADS (default 8).
"""

import multiprocessing
import os

from kuma.config import load_config
from kuma.edge.gunicorn_settings import *  # noqa: F403 (the settings every service shares)

_cfg = load_config(os.environ.get("KUMA_CONFIG_FILE") or None)

bind = [
    f"{_cfg.api_server.address}:{_cfg.api_server.port}",
    f"{_cfg.api_server.address}:{_cfg.xds_server.diagnostics_port}",
]
workers = int(os.environ.get("KUMA_API_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("KUMA_API_THREADS", "8"))
proc_name = "kuma-api"
