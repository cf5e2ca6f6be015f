"""gunicorn settings of the GUI service (DESIGN §1: Flask under gunicorn, gthread).

Binds `apiServer.address:guiServer.port` from the kuma config (`KUMA_CONFIG_FILE`, KUMA_* env)
unless `--bind` is given. Workers and threads: `guiServer.workers` (KUMA_GUI_WORKERS, default 1;
0: one per CPU) and `guiServer.threads` (KUMA_GUI_THREADS, default 8).
"""

import os

from kuma.config import load_config
from kuma.edge.gunicorn_settings import *  # noqa: F403 (the settings every service shares)
from kuma.edge.gunicorn_settings import processes

_cfg = load_config(os.environ.get("KUMA_CONFIG_FILE") or None)

bind = [f"{_cfg.api_server.address}:{_cfg.gui_server.port}"]
workers = processes(_cfg.gui_server.workers)
threads = _cfg.gui_server.threads
proc_name = "kuma-gui"
