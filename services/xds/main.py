"""`kuma-xds`: one xDS replica of the split stack (store + Redis change feed from config)."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from kuma import config as kconfig
from kuma.clitools import CONTEXT
from kuma.wiring import open_core
from services.xds.service import XdsService


async def _serve(cfg: kconfig.KumaCpConfig) -> None:
    core = open_core(cfg, name="kuma-xds")
    service = XdsService(cfg, core)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
        core.close()


@click.command(context_settings=CONTEXT)
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
@click.option("--log-level", type=click.Choice(["info", "debug"]), default="info")
def cli(config_file: str | None, log_level: str) -> None:
    """Serve Envoy configuration (ADS) for the Dataplanes that connect to this replica."""
    logging.basicConfig(
        level=logging.DEBUG if log_level == "debug" else logging.INFO,
        format="%(asctime)s\t%(levelname)s\t%(name)s\t%(message)s",
    )
    try:
        cfg = kconfig.autoconfigure(kconfig.load_config(config_file))
    except kconfig.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    asyncio.run(_serve(cfg))
