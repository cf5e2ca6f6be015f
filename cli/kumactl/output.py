"""`-o table|yaml|json` (spec §6.3) and the byte-level form of each.

JSON: 2-space indent and a trailing newline; each resource's top-level keys sorted, nested spec
objects in protobuf field order (they are re-encoded through the resource models, which keep it).
YAML: every mapping key sorted, sequences not indented under their key, `null` for nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from cli.kumactl.config import dump_yaml
from cli.kumactl.errors import CliError
from cli.kumactl.table import render_table
from kuma.errors import KumaError
from kuma.resources import wire
from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.insight import DataplaneInsightSpec

FORMATS = ("table", "yaml", "json")

output_option = click.option(
    "-o", "--output", default="table", show_default=True, help="output format: table|yaml|json"
)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise CliError(f'unknown output format "{fmt}"')
    return fmt


def render(data: Any, fmt: str) -> str:
    """`data` as JSON or YAML text, ending with a newline."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if data is None:
        return "null\n"
    return dump_yaml(data)


def _sorted_top(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in sorted(data)}


def decode_resource(item: Any) -> Resource:
    try:
        return wire.from_json(item)
    except KumaError as exc:
        raise CliError(f"the server sent a resource kumactl cannot read: {exc}") from None


def normalize_resource(item: dict[str, Any]) -> dict[str, Any]:
    """The API's representation with the spec re-encoded (protobuf order) and top keys sorted.
    Fields kumactl does not model (e.g. creation times) are kept as the server sent them."""
    encoded = wire.to_json(decode_resource(item))
    merged = {**{k: v for k, v in item.items() if k not in encoded}, **encoded}
    return _sorted_top(merged)


def normalize_overview(item: dict[str, Any]) -> dict[str, Any]:
    """A DataplaneOverview (spec §3.12) with both specs re-encoded, top keys sorted."""
    out = dict(item)
    for key, model in (("dataplane", DataplaneSpec), ("dataplaneInsight", DataplaneInsightSpec)):
        if isinstance(item.get(key), dict):
            try:
                out[key] = model.model_validate(item[key]).to_json()
            except ValueError as exc:
                raise CliError(f"the server sent an overview kumactl cannot read: {exc}") from None
    return _sorted_top(out)


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
