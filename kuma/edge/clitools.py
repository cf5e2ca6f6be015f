"""Click pieces that every binary shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kuma import logs
from kuma import version as build
from kuma.errors import ConfigError

CONTEXT = {"help_option_names": ["-h", "--help"]}
_F = TypeVar("_F", bound=Callable[..., Any])


def version_command() -> click.Command:
    """`version [-a|--detailed]` (spec §2.1, §6.11)."""

    @click.command(name="version")
    @click.option("-a", "--detailed", is_flag=True, help="print detailed version")
    def version(detailed: bool) -> None:
        """Print version."""
        click.echo(build.detailed() if detailed else build.version())

    return version


def _apply_level(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    try:
        logs.setup(value)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _level_option(default: str | None) -> Callable[[_F], _F]:
    return click.option(
        "--log-level",
        type=click.Choice(list(logs.LEVELS)),
        default=default,
        show_default=default is not None,
        expose_value=False,
        callback=_apply_level,
        help="log level (KUMA_LOG_FORMAT=json for JSON lines)",
    )


def log_level_option(default: str = "info") -> Callable[[_F], _F]:
    """`--log-level off|info|debug` of a binary: the logging is set up while the command line is
    parsed. On a group, `persist_log_level` accepts it after the subcommand too."""
    return _level_option(default)


def persist_log_level(command: click.Command) -> None:
    """Accept `--log-level` after every subcommand of `command` as well, as Kuma's persistent
    flag is (`kuma-cp run --log-level debug`); given there, it wins over the one before."""
    if not isinstance(command, click.Group):
        return
    for sub in command.commands.values():
        if not any(p.name == "log_level" for p in sub.params):
            _level_option(None)(sub)
        persist_log_level(sub)
