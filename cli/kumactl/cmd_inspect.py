"""`kumactl inspect dataplanes [--tag k=v ...]` (spec §6.4): dataplanes with their insights."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import click

from cli.kumactl.app import App, pass_app
from cli.kumactl.errors import failing
from cli.kumactl.output import View, normalize_overview, output_option, print_objects
from cli.kumactl.template import parse_pairs
from kuma.durations import format_go_duration
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.insight import DataplaneInsightSpec

HEADER = (
    "MESH",
    "NAME",
    "TAGS",
    "STATUS",
    "LAST CONNECTED AGO",
    "LAST UPDATED AGO",
    "TOTAL UPDATES",
    "TOTAL ERRORS",
)


def now() -> datetime:
    return datetime.now(UTC)


def _ago(moment: datetime | None, at: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((at - moment).total_seconds())  # truncated to whole seconds
    return format_go_duration(timedelta(seconds=seconds))


def overview_row(item: dict[str, Any], at: datetime) -> Sequence[str]:
    dataplane = DataplaneSpec.model_validate(item.get("dataplane") or {})
    insight = DataplaneInsightSpec.model_validate(item.get("dataplaneInsight") or {})
    latest = insight.latest()
    connected = [s.connect_time for s in insight.subscriptions if s.connect_time is not None]
    last_update = latest.status.last_update_time if latest is not None else None
    updates = sum(s.status.total.responses_sent for s in insight.subscriptions)
    errors = sum(s.status.total.responses_rejected for s in insight.subscriptions)
    return [
        str(item.get("mesh", "")),
        str(item.get("name", "")),
        dataplane.tags_string(),
        "Online" if insight.is_online() else "Offline",
        _ago(max(connected) if connected else None, at),
        _ago(last_update, at),
        str(updates),
        str(errors),
    ]


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
