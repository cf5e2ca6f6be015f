"""Click pieces that kuma-cp, kuma-dp and kumactl share."""

from __future__ import annotations

import click

from kuma import version as build

CONTEXT = {"help_option_names": ["-h", "--help"]}


def version_command() -> click.Command:
    """`version [-a|--detailed]` (spec §2.1, §6.11)."""

    @click.command(name="version")
    @click.option("-a", "--detailed", is_flag=True, help="print detailed version")
    def version(detailed: bool) -> None:
        """Print version."""
        click.echo(build.detailed() if detailed else build.version())

    return version
