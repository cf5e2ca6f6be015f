"""`kuma-api`: the API service under gunicorn (gthread), configured like kuma-cp.

    kuma-api [-c FILE] [--workers N]

Serves the REST API on `apiServer.address:apiServer.port` and diagnostics on
`xdsServer.diagnosticsPort`; settings of gunicorn itself are in `gunicorn.conf.py` beside this
file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from kuma.clitools import CONTEXT
from kuma.errors import ConfigError
from kuma.gunicorn_app import GunicornService
from services.api.wsgi import CONFIG_FILE_ENV, build_wsgi_app, load_api_config

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


@click.command(context_settings=CONTEXT)
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes")
def main(config_file: str | None, workers: int | None) -> None:
    """Serve the Kuma HTTP API (5681) and diagnostics (5680) under gunicorn."""
    if config_file:
        os.environ[CONFIG_FILE_ENV] = config_file  # gunicorn.conf.py reads the same file
    try:
        cfg = load_api_config(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    overrides: dict[str, Any] = {
        "bind": [
            f"{cfg.api_server.address}:{cfg.api_server.port}",
            f"{cfg.api_server.address}:{cfg.xds_server.diagnostics_port}",
        ]
    }
    if workers is not None:
        overrides["workers"] = workers
    GunicornService(GUNICORN_CONF, lambda: build_wsgi_app(cfg), overrides).run()


if __name__ == "__main__":
    main()
