"""`kuma-xds`: one xDS replica of the split stack (store + Redis change feed from config)."""

from __future__ import annotations

import asyncio
import signal

import click

from kuma import config as kconfig
from kuma.edge.clitools import CONTEXT, log_level_option
from kuma.edge.diagnostics import diagnostics_app
from kuma.edge.worker_client import WorkerRpcClient, worker_key
from kuma.edge.wsgi_server import ThreadedWsgiServer
from kuma.errors import KumaError
from kuma.wiring import open_core
from services.xds.service import XdsService


async def _serve(cfg: kconfig.KumaCpConfig) -> None:
    core = open_core(cfg, name="kuma-xds")
    # Mesh CA keys stay in the worker: this replica sends CSRs over RabbitMQ, each call proved
    # with the worker key from the store (kuma/edge/worker_client.py, "Who may ask").
    authority = WorkerRpcClient(cfg.worker.amqp_uri, key=lambda: worker_key(core.store))
    service = XdsService(cfg, core, authority=authority)
    xds = cfg.xds_server
    diagnostics = ThreadedWsgiServer(
        diagnostics_app(core.store), xds.address, xds.diagnostics_port, name="xds-diagnostics"
    )
    diagnostics.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
        diagnostics.stop()
        core.close()


@click.command(context_settings=CONTEXT)
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
@log_level_option("info")
def cli(config_file: str | None) -> None:
    """Serve Envoy configuration (ADS) for the Dataplanes that connect to this replica."""
    try:
        cfg = kconfig.autoconfigure(kconfig.load_config(config_file))
    except kconfig.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        asyncio.run(_serve(cfg))
    except KumaError as exc:  # the store or the change feed cannot be reached at start
        raise click.ClickException(str(exc)) from None
