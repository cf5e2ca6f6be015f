"""kuma-dp: fetches Envoy's bootstrap for one Dataplane and runs Envoy (spec §10)."""

from __future__ import annotations

import click

from kuma.clitools import CONTEXT, version_command


@click.group(context_settings=CONTEXT)
@click.option(
    "--log-level",
    type=click.Choice(["off", "info", "debug"]),
    default="info",
    show_default=True,
    help="log level",
)
def cli(log_level: str) -> None:
    """Dataplane manager for Envoy-based Dataplanes."""


cli.add_command(version_command())
