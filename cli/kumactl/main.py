"""kumactl: the command line against the API service (spec §6)."""

from __future__ import annotations

import click

from kuma.clitools import CONTEXT, version_command


@click.group(context_settings=CONTEXT)
@click.option(
    "--config-file", type=click.Path(), default=None, help="path to the configuration file to use"
)
@click.option("-m", "--mesh", default="default", show_default=True, help="mesh to use")
@click.option(
    "--log-level",
    type=click.Choice(["off", "info", "debug"]),
    default="off",
    show_default=True,
    help="log level",
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, mesh: str, log_level: str) -> None:
    """Management tool for Kuma."""
    ctx.obj = {"config_file": config_file, "mesh": mesh, "log_level": log_level}


cli.add_command(version_command())
