"""CORS (spec §4): an `Origin` matching one of `apiServer.corsAllowedDomains` (regular
expressions, matched against the whole origin; docs/compat.md) is echoed in
`Access-Control-Allow-Origin`; preflight `OPTIONS` requests are answered here.

A preflight from an origin that is not allowed gets 403 and no grant, so a browser never sends
the write it announced. A grant lets a page send the request and read the answer; it does not
authorize a write (services/api/write_guard.py decides that)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from flask import Flask, Response, request

from services.api.errors import error_response

MAX_AGE = "600"


def origin_matcher(allowed_domains: Iterable[str]) -> Callable[[str], bool]:
    """Whether an `Origin` is one of `allowed_domains` (each a regexp for the whole origin)."""
    patterns = [re.compile(domain) for domain in allowed_domains]

    def allowed(origin: str) -> bool:
        return any(p.fullmatch(origin) for p in patterns)

    return allowed


def install_cors(app: Flask, allowed_domains: Iterable[str], methods: Iterable[str]) -> None:
    allowed = origin_matcher(allowed_domains)
    allow_methods = ", ".join([*methods, "OPTIONS"])

    @app.before_request
    def _preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        origin = request.headers.get("Origin")
        if origin and not allowed(origin):
            return error_response(
                403, "Forbidden", "this origin is not allowed (apiServer.corsAllowedDomains)"
            )
        response = Response(b"", status=200)
        del response.headers["Content-Type"]
        if origin:
            response.headers["Access-Control-Allow-Methods"] = allow_methods
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Content-Type, Authorization"
            )
            response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response

    @app.after_request
    def _allow_origin(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
        return response
