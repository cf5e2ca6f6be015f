"""`kumactl completion bash|zsh`: the shell completion script, from click's own support."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh")


@click.command(name="completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Output shell completion code for bash or zsh."""
    root = ctx.find_root()
    cls = get_completion_class(shell)
    assert cls is not None  # both shells are built into click
    source = cls(root.command, {}, "kumactl", "_KUMACTL_COMPLETE").source()
    click.echo(source)
