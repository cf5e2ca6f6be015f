"""A dataplane's status as `kumactl inspect dataplanes` prints it (spec §6.4), from a
DataplaneOverview (spec §3.12): shared by kumactl and the GUI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

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


def ago(moment: datetime | None, at: datetime) -> str:
    """`at - moment` truncated to whole seconds as a Go duration (`2h3m4s`); `never` for None."""
    if moment is None:
        return "never"
    seconds = int((at - moment).total_seconds())
    return format_go_duration(timedelta(seconds=seconds))


def overview_row(item: dict[str, Any], at: datetime) -> Sequence[str]:
    """The row of `HEADER` for one DataplaneOverview, `at` being now."""
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
        ago(max(connected) if connected else None, at),
        ago(last_update, at),
        str(updates),
        str(errors),
    ]
