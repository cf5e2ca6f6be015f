"""`kuma-bootstrap`: the bootstrap service under gunicorn (gthread), configured like kuma-cp.

    kuma-bootstrap [-c FILE] [--workers N] [--bind HOST:PORT]

Gunicorn's own settings are in `gunicorn.conf.py` beside this file.
"""

from __future__ import annotations

from pathlib import Path

import click

from kuma.edge.clitools import CONTEXT
from kuma.edge.gunicorn_app import serve, server_options
from services.bootstrap.wsgi import CONFIG_FILE_ENV, BootstrapWsgi, load_bootstrap_config

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


@click.command(context_settings=CONTEXT)
@server_options
@click.option("--bind", default=None, help="HOST:PORT (default 0.0.0.0:bootstrapServer.port)")
def main(config_file: str | None, workers: int | None, bind: str | None) -> None:
    """Serve POST /bootstrap (5682): Envoy bootstraps for kuma-dp."""
    overrides = {"workers": workers, "bind": [bind] if bind else None}
    serve(
        GUNICORN_CONF, CONFIG_FILE_ENV, config_file, load_bootstrap_config, BootstrapWsgi, overrides
    )


if __name__ == "__main__":
    main()
