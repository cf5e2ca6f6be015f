"""kumactl: the command line against the API service (spec §6)."""

from __future__ import annotations

import click

from cli.kumactl import config as kconfig
from cli.kumactl.app import App
from cli.kumactl.cmd_apply import apply
from cli.kumactl.cmd_completion import completion
from cli.kumactl.cmd_config import config
from cli.kumactl.cmd_delete import delete
from cli.kumactl.cmd_generate import generate
from cli.kumactl.cmd_get import get
from cli.kumactl.cmd_inspect import inspect
from cli.kumactl.cmd_install import install
from cli.kumactl.cmd_manage import manage
from kuma.edge.clitools import CONTEXT, log_level_option, persist_log_level, version_command


@click.group(context_settings=CONTEXT)
@click.option(
    "--config-file", type=click.Path(), default=None, help="path to the configuration file to use"
)
@click.option("-m", "--mesh", default="default", show_default=True, help="mesh to use")
@log_level_option("off")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, mesh: str) -> None:
    """Management tool for Kuma."""
    if ctx.resilient_parsing:  # shell completion: no file access
        return
    cfg, path = kconfig.load_or_init(config_file)
    ctx.obj = App(cfg, path, mesh)


for _command in (apply, completion, config, delete, generate, get, inspect, install, manage):
    cli.add_command(_command)
cli.add_command(version_command())
persist_log_level(cli)
