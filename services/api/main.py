"""`kuma-api`: the API service under gunicorn (gthread), configured like kuma-cp.

    kuma-api [-c FILE] [--workers N]

Serves the REST API on `apiServer.address:apiServer.port` and diagnostics on
`xdsServer.diagnosticsPort`; settings of gunicorn itself are in `gunicorn.conf.py` beside this
file.
"""

from __future__ import annotations

from pathlib import Path

import click

from kuma.edge.clitools import CONTEXT
from kuma.edge.gunicorn_app import serve, server_options
from services.api.wsgi import CONFIG_FILE_ENV, build_wsgi_app, load_api_config

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


@click.command(context_settings=CONTEXT)
@server_options
def main(config_file: str | None, workers: int | None) -> None:
    """Serve the Kuma HTTP API (5681) and diagnostics (5680) under gunicorn."""
    # Both binds come from gunicorn.conf.py, which reads the same config file.
    serve(
        GUNICORN_CONF,
        CONFIG_FILE_ENV,
        config_file,
        load_api_config,
        build_wsgi_app,
        {"workers": workers},
    )


if __name__ == "__main__":
    main()
