"""gunicorn settings of the injector (DESIGN §1: Flask under gunicorn, gthread, TLS).

Binds `webHookServer.address:port` (default all interfaces, 8443) with `tls.crt`/`tls.key` from
`webHookServer.certDir`, read from the injector config (`KUMA_INJECTOR_CONFIG_FILE`,
KUMA_INJECTOR_* env). Workers and threads: `webHookServer.workers` (KUMA_INJECTOR_WORKERS,
default 2; 0: one per CPU) and `webHookServer.threads` (KUMA_INJECTOR_THREADS, default 4).
"""

import os

from kuma.edge.gunicorn_settings import *  # noqa: F403 (the settings every service shares)
from kuma.edge.gunicorn_settings import processes
from services.injector.config import load_injector_config

_cfg = load_injector_config(os.environ.get("KUMA_INJECTOR_CONFIG_FILE") or None)
_server = _cfg.web_hook_server
_host = _server.address or "0.0.0.0"

bind = [f"[{_host}]:{_server.port}" if ":" in _host else f"{_host}:{_server.port}"]
certfile = _server.cert_file
keyfile = _server.key_file
workers = processes(_server.workers)
threads = _server.threads
proc_name = "kuma-injector"
