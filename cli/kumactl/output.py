"""`-o table|yaml|json` (spec §6.3): the byte-level forms live in `kuma.resource_text`, which
the GUI shares; here the click option, the table and kumactl's errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from cli.kumactl.errors import CliError
from cli.kumactl.table import render_table
from kuma import resource_text
from kuma.errors import KumaError
from kuma.resources import wire
from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.insight import DataplaneInsightSpec

FORMATS = ("table", "yaml", "json")
UNREADABLE = "the server sent a resource kumactl cannot read"

output_option = click.option(
    "-o", "--output", default="table", show_default=True, help="output format: table|yaml|json"
)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise CliError(f'unknown output format "{fmt}"')
    return fmt


render = resource_text.render


def decode_resource(item: Any) -> Resource:
    try:
        return wire.from_json(item)
    except KumaError as exc:
        raise CliError(f"{UNREADABLE}: {exc}") from None


def normalize_resource(item: dict[str, Any]) -> dict[str, Any]:
    """`kuma.resource_text.normalize_resource`, its errors as kumactl's."""
    try:
        return resource_text.normalize_resource(item)
    except KumaError as exc:
        raise CliError(f"{UNREADABLE}: {exc}") from None


def normalize_overview(item: dict[str, Any]) -> dict[str, Any]:
    """A DataplaneOverview (spec §3.12) with both specs re-encoded, top keys sorted."""
    out = dict(item)
    for key, model in (("dataplane", DataplaneSpec), ("dataplaneInsight", DataplaneInsightSpec)):
        if isinstance(item.get(key), dict):
            try:
                out[key] = model.model_validate(item[key]).to_json()
            except ValueError as exc:
                raise CliError(f"the server sent an overview kumactl cannot read: {exc}") from None
    return resource_text.sorted_top(out)


@dataclass(frozen=True)
class View:
    """How one kind of object prints: table header, its row, its JSON/YAML form."""

    header: Sequence[str]
    row: Callable[[dict[str, Any]], Sequence[str]]
    normalize: Callable[[dict[str, Any]], dict[str, Any]]


def print_objects(
    items: Sequence[dict[str, Any]], fmt: str, view: View, single: bool = False
) -> None:
    """A list as a table or `{"items": [...]}`; with `single`, the one object itself."""
    if check_format(fmt) == "table":
        click.echo(render_table(view.header, [view.row(i) for i in items]), nl=False)
    elif single:
        click.echo(render(view.normalize(items[0]), fmt), nl=False)
    else:
        click.echo(render({"items": [view.normalize(i) for i in items]}, fmt), nl=False)
