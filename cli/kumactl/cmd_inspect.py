"""`kumactl inspect dataplanes [--tag k=v ...]` (spec §6.4): dataplanes with their insights."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import click

from cli.kumactl.app import App, pass_app
from cli.kumactl.errors import failing
from cli.kumactl.output import View, normalize_overview, output_option, print_objects
from cli.kumactl.template import parse_pairs
from kuma.dataplane_status import HEADER, overview_row
from kuma.resource_text import sorted_top


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
