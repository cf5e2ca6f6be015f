"""`kumactl delete TYPE NAME` (spec §6.6)."""

from __future__ import annotations

import click

from cli.kumactl.app import App, pass_app
from cli.kumactl.client import resource_path
from cli.kumactl.errors import ApiError, CliError, HttpError, failing
from kuma.resources.registry import TYPES, by_kumactl_delete

# Kuma's order: mesh first, then the other types alphabetically.
ALLOWED = sorted(
    (t.kumactl_delete for t in TYPES if t.kumactl_delete), key=lambda w: (w != "mesh", w)
)


@click.command(name="delete")
@click.argument("args", nargs=-1, metavar="TYPE NAME")
@pass_app
def delete(app: App, args: tuple[str, ...]) -> None:
    """Delete Kuma resources."""
    if len(args) != 2:
        raise CliError(f"accepts 2 arg(s), received {len(args)}")
    word, name = args
    rtype = by_kumactl_delete(word)
    if rtype is None:
        raise CliError(f"unknown TYPE: {word}. Allowed values: {', '.join(ALLOWED)}")
    client = app.client()
    missing = False
    with failing(f'failed to delete {rtype.name} with the name "{name}"'):
        try:
            client.delete(resource_path(rtype, app.mesh, name))
        except (ApiError, HttpError) as exc:
            if exc.status != 404:
                raise
            missing = True
    if missing:
        raise CliError(f'there is no {rtype.name} with name "{name}"')
    click.echo(f'deleted {rtype.name} "{name}"')
