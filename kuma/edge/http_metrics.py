"""Request metrics of the HTTP services, named as Kuma 2.x names them (its go-http-metrics
middleware, one prefix per server): `api_server_http_request_duration_seconds` for the API,
`dp_server_http_request_duration_seconds` for the bootstrap server (Kuma's dp-server),
histograms in seconds labelled `handler`, `method`, `code` and `service` (empty, as Kuma's).

`handler` is the route template (`/meshes/{mesh}/dataplanes/{name}`), so that resource names do
not make series of their own; a request no route matched counts as `unmatched`. A WSGI
middleware with no framework: the route is the rule the app's URL map (a Werkzeug `Map`, such
as a Flask app's `url_map`) matches. Under gunicorn every worker counts into the shared
multiprocess directory (`kuma.prom`)."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Histogram

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LABELS = ["handler", "method", "code", "service"]
UNMATCHED = "unmatched"
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@functools.cache
def request_duration(prefix: str) -> Histogram:
    """`<prefix>_http_request_duration_seconds`, made once per prefix."""
    return Histogram(
        f"{prefix}_http_request_duration_seconds", "The latency of the HTTP requests.", LABELS
    )


def handler_of(rule: str | None) -> str:
    """`/meshes/<mesh>/<path:name>` → `/meshes/{mesh}/{name}`."""
    return _PARAM.sub(r"{\1}", rule) if rule else UNMATCHED


def route_of(url_map: Any, environ: dict[str, Any]) -> str | None:
    """The rule of `url_map` the request matches, if any."""
    try:
        rule, _ = url_map.bind_to_environ(environ).match(return_rule=True)
    except Exception:  # not found, wrong method, a redirect: no route of its own
        return None
    return str(rule.rule)


def measured(app: WsgiApp, prefix: str, url_map: Any) -> WsgiApp:
    """`app`, timing each request into `<prefix>_http_request_duration_seconds`."""
    histogram = request_duration(prefix)

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        code = ["500"]  # what an app that raises answers

        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            code[0] = status[:3]
            return start_response(status, headers, exc_info)

        try:
            return app(environ, start)
        finally:
            handler = handler_of(route_of(url_map, environ))
            method = environ.get("REQUEST_METHOD", "")
            histogram.labels(handler, method, code[0], "").observe(time.perf_counter() - started)

    return wrapped
