"""The Grafana dashboard (docs/grafana/kuma-dashboard.json), checked statically (Grafana does not
run here): valid JSON whose every PromQL query names only metrics the control plane exports,
collected from the registries of the modules that define them, or Envoy's `envoy_*`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "kuma-dashboard.json"
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "summary": ("", "_count", "_sum"),
    "histogram": ("_bucket", "_count", "_sum"),
}
# PromQL words that are not metric names (aggregation modifiers, grouping, set operators)
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}


def exported() -> set[str]:
    """Every series name the control plane's processes expose."""
    import kuma.ca
    import kuma.store.metered
    import services.injector.metrics
    import services.xds.metrics
    from kuma.edge import http_metrics

    del kuma.ca, kuma.store.metered, services.injector.metrics, services.xds.metrics
    for prefix in ("api_server", "dp_server"):
        http_metrics.request_duration(prefix)
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, legends)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match.group()
        if word not in KEYWORDS and not text[match.end() :].lstrip().startswith("("):
            names.add(word)
    return names


def queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def test_the_extractor_finds_the_metric_names() -> None:
    expr = (
        'sum by (type_url) (rate(xds_responses_sent{type_url=~"a.*"}[5m])) '
        "/ on (x) histogram_quantile(0.99, rate(store_bucket[1m]))"
    )
    assert metric_names(expr) == {"xds_responses_sent", "store_bucket"}


def test_every_query_names_only_exported_or_envoy_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = list(queries(dashboard["panels"]))
    assert len(exprs) >= 10
    known = exported()
    named = {name for expr in exprs for name in metric_names(expr)}
    unknown = {n for n in named if n not in known and not n.startswith("envoy_")}
    assert not unknown, f"queries name metrics nothing exports: {sorted(unknown)}"
    # the control plane's panels: convergence, pushes, streams, store
    for name in ("xds_delivery_sum", "xds_responses_sent", "xds_streams_active", "store_count"):
        assert name in named
    assert any(name.startswith("envoy_") for name in named)
    for variable in dashboard["templating"]["list"]:  # label_values(metric, label)
        metric = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["definition"])
        assert metric is not None and metric.group(1) in named
