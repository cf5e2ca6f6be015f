"""`kumactl inspect dataplanes [--tag k=v ...]` (spec §6.4): dataplanes with their insights."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import click

from cli.kumactl.app import App, pass_app
from cli.kumactl.errors import failing
from cli.kumactl.output import View, normalize_overview, output_option, print_objects
from cli.kumactl.template import parse_pairs
from kuma.dataplane_status import HEADER, overview_row


def now() -> datetime:
    return datetime.now(UTC)


@click.group(name="inspect")
def inspect() -> None:
    """Inspect Kuma resources."""


@inspect.command(name="dataplanes")
@click.option("--tag", "tags", multiple=True, help="filter by tag in format of key=value")
@output_option
@pass_app
def inspect_dataplanes(app: App, tags: tuple[str, ...], output: str) -> None:
    """Inspect Dataplanes."""
    params = [("tag", f"{k}:{v}") for k, v in parse_pairs(tags, "--tag").items()]
    path = f"/meshes/{quote(app.mesh, safe='')}/dataplanes+insights"
    client = app.client()
    with failing("failed to list Dataplanes"):
        items = client.list_all(path, params)
    at = now()
    view = View(HEADER, lambda item: overview_row(item, at), normalize_overview)
    print_objects(items, output, view)
