"""`kumactl inspect dataplanes [--tag k=v ...]` (spec §6.4): dataplanes with their insights;
`kumactl inspect meshes` and `kumactl inspect dataplane NAME` (Kuma 1.x): each mesh's counts, and
the policies that select one dataplane."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import click

from cli.kumactl.app import App, pass_app
from cli.kumactl.cmd_get import get_one
from cli.kumactl.errors import failing
from cli.kumactl.output import (
    View,
    check_format,
    normalize_overview,
    output_option,
    print_objects,
    render,
)
from cli.kumactl.template import parse_pairs
from kuma.dataplane_status import HEADER, overview_row
from kuma.resource_text import sorted_top
from kuma.resources.registry import DATAPLANE, get_type


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


# Kuma 1.x's `kumactl inspect meshes` columns, from its MeshInsight (`GET /mesh-insights`).
_MESH_POLICIES = (
    ("TRAFFIC PERMISSIONS", "TrafficPermission"),
    ("TRAFFIC ROUTES", "TrafficRoute"),
    ("TRAFFIC LOGS", "TrafficLog"),
    ("HEALTH CHECKS", "HealthCheck"),
    ("PROXY TEMPLATES", "ProxyTemplate"),
)
MESH_HEADER = ("NAME", "DATAPLANES", *(h for h, _ in _MESH_POLICIES))


def mesh_insight_row(item: dict[str, Any]) -> Sequence[str]:
    dataplanes = item.get("dataplanes") or {}
    policies = item.get("policies") or {}
    return [
        str(item.get("name", "")),
        f"{dataplanes.get('online', 0)}/{dataplanes.get('total', 0)}",
        *(str((policies.get(kind) or {}).get("total", 0)) for _, kind in _MESH_POLICIES),
    ]


@inspect.command(name="meshes")
@output_option
@pass_app
def inspect_meshes(app: App, output: str) -> None:
    """Inspect Meshes: dataplanes online/total and policies of each kind."""
    with failing("failed to list Meshes"):
        items = app.client().list_all("/mesh-insights")
    print_objects(items, output, View(MESH_HEADER, mesh_insight_row, sorted_top))


_WHERE = {"dataplane": "DATAPLANE", "inbound": "INBOUND", "outbound": "OUTBOUND"}


def policies_text(items: Sequence[dict[str, Any]]) -> str:
    """Kuma 1.x's `kumactl inspect dataplane` layout: a block per place a policy attaches to
    (`DATAPLANE:`, `INBOUND <interface>(<service>):`, `OUTBOUND ...`, `SERVICE <name>:`), each
    kind of policy under it with its names, `(none)` for a kind none of which selects it."""
    blocks = []
    for item in items:
        where = item.get("type", "")
        if where == "service":
            title = f"SERVICE {item.get('name', '')}"
        elif where in ("inbound", "outbound"):
            title = f"{_WHERE[where]} {item.get('name', '')}({item.get('service', '')})"
        else:
            title = _WHERE.get(where, where.upper())
        lines = [f"{title}:"]
        for kind, found in (item.get("matchedPolicies") or {}).items():
            lines.append(f"  {kind}")
            lines += [f"    {p.get('name', '')}" for p in found] or ["    (none)"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


@inspect.command(name="dataplane")
@click.argument("name")
@output_option
@pass_app
def inspect_dataplane(app: App, name: str, output: str) -> None:
    """Inspect a Dataplane: the policies that select it, where each applies (the choice the
    control plane makes for its Envoy)."""
    fmt = check_format(output)
    path = f"/meshes/{quote(app.mesh, safe='')}/dataplanes/{quote(name, safe='')}/policies"
    body = get_one(app, get_type(DATAPLANE), path)
    if fmt == "table":
        click.echo(policies_text(body.get("items") or []), nl=False)
    else:
        click.echo(render(body, fmt), nl=False)
