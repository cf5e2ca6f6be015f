"""Who may write: reads are open; PUT and DELETE need `Authorization: Bearer <admin token>`
unless the request comes from this host (a loopback remote address)."""

from __future__ import annotations

import hmac

from flask import Flask, Request, Response, request

from kuma.netutil import is_loopback
from services.api.errors import error_response

WRITE_METHODS = frozenset({"PUT", "DELETE", "POST", "PATCH"})
UNAUTHORIZED = "Unauthorized"


def _bearer(req: Request) -> str | None:
    scheme, _, credentials = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def install_write_guard(app: Flask, token: str, *, trust_loopback: bool = True) -> None:
    """Answer 401 (Kuma's error body, nothing written) to writes without the admin token."""
    expected = token.encode()

    @app.before_request
    def _require_admin_token() -> Response | None:
        if request.method not in WRITE_METHODS or request.routing_exception is not None:
            return None  # reads, and routes that do not exist (404/405 win)
        if trust_loopback and is_loopback(request.remote_addr):
            return None
        given = _bearer(request)
        if given is not None and hmac.compare_digest(given.encode(), expected):
            return None
        details = (
            "invalid admin token"
            if given is not None
            else "writes require an admin token: "
            "send `Authorization: Bearer <token>` (see `kuma-cp admin-token`)"
        )
        response = error_response(401, UNAUTHORIZED, details)
        response.headers["WWW-Authenticate"] = 'Bearer realm="kuma"'
        return response
