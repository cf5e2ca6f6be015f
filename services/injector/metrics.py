"""The injector's admission metrics, named as Kuma's injector (controller-runtime's webhook
server) names them: `controller_runtime_webhook_requests_total` by `code` and `webhook` (the
path), and `controller_runtime_webhook_latency_seconds` by `webhook`."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import Counter, Histogram

WEBHOOK_PATH = "/inject-sidecar"
REQUESTS = Counter(
    "controller_runtime_webhook_requests",
    "Total number of admission requests by HTTP status code.",
    ["code", "webhook"],
)
LATENCY = Histogram(
    "controller_runtime_webhook_latency_seconds",
    "Histogram of the latency of processing admission requests",
    ["webhook"],
)


def install_webhook_metrics(app: Flask) -> None:
    @app.before_request
    def _started() -> None:
        g.webhook_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("webhook_started")
        if started is not None and request.path == WEBHOOK_PATH:
            LATENCY.labels(WEBHOOK_PATH).observe(time.perf_counter() - started)
            REQUESTS.labels(str(response.status_code), WEBHOOK_PATH).inc()
        return response
