"""CORS (spec §4): an `Origin` matching one of `apiServer.corsAllowedDomains` (regular
expressions, matched against the whole origin; docs/compat.md) is echoed in
`Access-Control-Allow-Origin`; preflight `OPTIONS` requests are answered here."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Flask, Response, request

MAX_AGE = "600"


def install_cors(app: Flask, allowed_domains: Iterable[str], methods: Iterable[str]) -> None:
    patterns = [re.compile(domain) for domain in allowed_domains]
    allow_methods = ", ".join([*methods, "OPTIONS"])

    def allowed(origin: str) -> bool:
        return any(p.fullmatch(origin) for p in patterns)

    @app.before_request
    def _preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        response = Response(b"", status=200)
        del response.headers["Content-Type"]
        origin = request.headers.get("Origin")
        if origin and allowed(origin):
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
