"""Diagnostics on `xdsServer.diagnosticsPort` (5680, spec §12.1): `/healthy` is 200 while the
process serves; `/ready` is 200 when the store answers a ping, 503 otherwise; `/metrics` is the
process's Prometheus metrics (under gunicorn, all its workers' together: `kuma.prom`). A tiny
WSGI app with no framework, so that it stays up whatever the service beside it does. Every
service process serves it (API, xDS, kuma-cp run)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from kuma.store.base import ResourceStore

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _answer(start_response: StartResponse, status: str) -> list[bytes]:
    start_response(status, [("Content-Length", "0")])
    return [b""]


def _metrics(start_response: StartResponse) -> list[bytes]:
    from kuma import prom

    body, content_type = prom.exposition()
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def diagnostics_app(store: ResourceStore) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed")
        if path == "/healthy":
            return _answer(start_response, "200 OK")
        if path == "/metrics":
            return _metrics(start_response)
        if path == "/ready":
            try:
                store.ping()
            except Exception as exc:  # any failure to reach the store means "not ready"
                log.warning("not ready: %s", exc)
                return _answer(start_response, "503 Service Unavailable")
            return _answer(start_response, "200 OK")
        return _answer(start_response, "404 Not Found")

    return app
