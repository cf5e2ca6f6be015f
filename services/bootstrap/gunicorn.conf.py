"""gunicorn settings of the bootstrap service (DESIGN §1: Flask under gunicorn, gthread).

Binds `0.0.0.0:bootstrapServer.port` from the kuma config (`KUMA_CONFIG_FILE`, KUMA_* env) unless
`--bind` is given. The port speaks HTTPS with the control plane's certificate and plain HTTP,
told apart per connection (`kuma.edge.gunicorn_dual`); the app answers plain HTTP to this host only.
Workers and threads: `bootstrapServer.workers` (KUMA_BOOTSTRAP_WORKERS, default 2; 0: one per
CPU) and `bootstrapServer.threads` (KUMA_BOOTSTRAP_THREADS, default 4).
"""

import os

from kuma.config import load_config
from kuma.edge.gunicorn_settings import *  # noqa: F403 (the settings every service shares)
from kuma.edge.gunicorn_settings import processes

_cfg = load_config(os.environ.get("KUMA_CONFIG_FILE") or None)

bind = [f"0.0.0.0:{_cfg.bootstrap_server.port}"]
worker_class = "kuma.edge.gunicorn_dual.DualProtocolWorker"
workers = processes(_cfg.bootstrap_server.workers)
threads = _cfg.bootstrap_server.threads
proc_name = "kuma-bootstrap"
