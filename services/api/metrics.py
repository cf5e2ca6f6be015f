"""The API's request metrics, named as Kuma 2.x names them (its go-http-metrics middleware with
the `api_server` prefix): `api_server_http_request_duration_seconds`, a histogram in seconds
labelled `handler` (the route template, `/meshes/{mesh}/dataplanes/{name}`, so that names and
meshes do not make series of their own), `method`, `code` and `service` (empty, as Kuma's).
Under gunicorn every worker counts into the shared multiprocess directory (`kuma.prom`)."""

from __future__ import annotations

import re
import time

from flask import Flask, Response, g, request
from prometheus_client import Histogram

REQUEST_DURATION = Histogram(
    "api_server_http_request_duration_seconds",
    "The latency of the HTTP requests.",
    ["handler", "method", "code", "service"],
)
UNMATCHED = "unmatched"  # requests no route matched (404s of arbitrary paths: one series)
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def handler_of(rule: str | None) -> str:
    """`/meshes/<mesh>/<path:name>` → `/meshes/{mesh}/{name}`."""
    return _PARAM.sub(r"{\1}", rule) if rule else UNMATCHED


def install_request_metrics(app: Flask) -> None:
    @app.before_request
    def _started() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else None
            REQUEST_DURATION.labels(
                handler_of(rule), request.method, str(response.status_code), ""
            ).observe(time.perf_counter() - started)
        return response
