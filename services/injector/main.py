"""`kuma-injector`: the sidecar injector webhook under gunicorn with TLS (spec §11.1, port 8443).

    kuma-injector run [-c FILE] [--workers N]     (Kuma's form; the bare `kuma-injector` too)

Configuration: the YAML file (`--config-file`, or `KUMA_INJECTOR_CONFIG_FILE`) and
KUMA_INJECTOR_* env vars (services/injector/config.py); gunicorn's own settings are in
`gunicorn.conf.py` beside this file. The TLS key pair is `tls.crt`/`tls.key` in
`webHookServer.certDir` (the mounted `kubernetes.io/tls` Secret).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from kuma.edge.clitools import CONTEXT
from kuma.edge.gunicorn_app import serve, server_options
from kuma.errors import ConfigError
from services.injector.config import CONFIG_FILE_ENV, InjectorConfig
from services.injector.wsgi import build_app, load_config

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def check_tls_files(cfg: InjectorConfig) -> None:
    server = cfg.web_hook_server
    for path in (server.cert_file, server.key_file):
        if not os.path.isfile(path):
            raise ConfigError(
                f"TLS file {path} not found: webHookServer.certDir "
                f"(KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR) must hold tls.crt and tls.key"
            )


@click.group(context_settings=CONTEXT, invoke_without_command=True)
@server_options
@click.pass_context
def main(ctx: click.Context, config_file: str | None, workers: int | None) -> None:
    """The Kuma sidecar injector webhook (`run` serves it)."""
    if ctx.invoked_subcommand is None:
        _serve(config_file, workers)


@main.command("run")
@server_options
def run(config_file: str | None, workers: int | None) -> None:
    """Serve POST /inject-sidecar (8443, TLS): the Kuma sidecar injector webhook."""
    _serve(config_file, workers)


def _serve(config_file: str | None, workers: int | None) -> None:
    serve(GUNICORN_CONF, CONFIG_FILE_ENV, config_file, _load, build_app, {"workers": workers})


def _load(config_file: str | None) -> InjectorConfig:
    cfg = load_config(config_file)
    check_tls_files(cfg)
    return cfg


if __name__ == "__main__":
    main()
