"""`kuma-gui`: the GUI service under gunicorn (gthread), configured like kuma-cp.

    kuma-gui [-c FILE] [--workers N]

Serves the GUI on `guiServer.port` (5683), reading the API at `guiServer.apiServerUrl`.
"""

from __future__ import annotations

from pathlib import Path

import click

from kuma.edge.clitools import CONTEXT
from kuma.edge.gunicorn_app import serve, server_options
from services.gui.wsgi import CONFIG_FILE_ENV, build_wsgi_app, load_gui_config

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


@click.command(context_settings=CONTEXT)
@server_options
def main(config_file: str | None, workers: int | None) -> None:
    """Serve the Kuma GUI (5683) under gunicorn."""
    serve(
        GUNICORN_CONF,
        CONFIG_FILE_ENV,
        config_file,
        load_gui_config,
        build_wsgi_app,
        {"workers": workers},
    )


if __name__ == "__main__":
    main()
