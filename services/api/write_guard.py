"""Who may write: reads are open; PUT, DELETE and POST need `Authorization: Bearer <admin
token>`, unless same-host trust (`general.trustLoopback`) applies to the request:

- its peer is a loopback address (`X-Forwarded-For` is not trusted), and
- its `Host` header names this host (`localhost`, a loopback address, or one of `local_names`):
  a page on a DNS-rebound name (`evil.example` resolving to 127.0.0.1) sends its own name, and
- it has no foreign `Origin`: none, the API's own, or one allowed by CORS whose host is also
  this host (the GUI on localhost). Browsers send `Origin` with every cross-origin request and
  every non-GET request, so a page elsewhere is never taken for a local process.

Every write with a body must also say `Content-Type: application/json` (415 otherwise), so that
no write is a "simple" request a browser sends without a CORS preflight (a `text/plain` POST
/tokens was one). DELETE needs no body: no browser sends it without a preflight.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from flask import Flask, Request, Response, request

from kuma.config import KumaCpConfig
from kuma.netutil import host_name, is_local_name, is_loopback
from services.api.errors import error_response

WRITE_METHODS = frozenset({"PUT", "DELETE", "POST", "PATCH"})
BODY_METHODS = frozenset({"PUT", "POST", "PATCH"})
JSON = "application/json"
UNAUTHORIZED = "Unauthorized"
UNSUPPORTED_MEDIA_TYPE = "Unsupported Media Type"


def same_host_names(cfg: KumaCpConfig) -> tuple[str, ...]:
    """The names a `Host` header may use for this host, besides `localhost` and the loopback
    addresses: `general.advertisedHostname`, `general.tlsServerNames`,
    `general.localHostnames` and the machine's host name."""
    general = cfg.general
    names = (
        general.advertised_hostname,
        *general.tls_server_names,
        *general.local_hostnames,
        socket.gethostname(),
    )
    return tuple(dict.fromkeys(n for n in names if n))


def _bearer(req: Request) -> str | None:
    scheme, _, credentials = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def _origin_is_foreign(
    req: Request, local_names: Iterable[str], origin_allowed: Callable[[str], bool]
) -> bool:
    origin = req.headers.get("Origin")
    if origin is None:
        return False
    if origin.lower() == f"{req.scheme}://{req.headers.get('Host', '')}".lower():
        return False  # same origin: a page the API itself served
    if not origin_allowed(origin):
        return True
    parts = urlsplit(origin)  # "null" (sandboxed frames, file:) has no host: foreign
    return not is_local_name(host_name(parts.netloc), local_names)


def is_same_host(
    req: Request, local_names: Iterable[str], origin_allowed: Callable[[str], bool]
) -> bool:
    """Whether same-host trust applies to `req` (the rules in this module's docstring)."""
    names = tuple(local_names)
    return (
        is_loopback(req.remote_addr)
        and is_local_name(host_name(req.headers.get("Host")), names)
        and not _origin_is_foreign(req, names, origin_allowed)
    )


def install_write_guard(
    app: Flask,
    token: str,
    *,
    trust_loopback: bool = True,
    local_names: Iterable[str] = (),
    origin_allowed: Callable[[str], bool] = lambda origin: False,
) -> None:
    """Answer 401 (Kuma's error body, nothing written) to writes without the admin token or
    same-host trust, and 415 to writes with a body that is not declared JSON."""
    expected = token.encode()
    names = tuple(local_names)

    @app.before_request
    def _require_admin_token() -> Response | None:
        if request.method not in WRITE_METHODS or request.routing_exception is not None:
            return None  # reads, and routes that do not exist (404/405 win)
        given = _bearer(request)
        if given is not None:
            authorized = hmac.compare_digest(given.encode(), expected)
        else:
            authorized = trust_loopback and is_same_host(request, names, origin_allowed)
        if not authorized:
            details = (
                "invalid admin token"
                if given is not None
                else "writes require an admin token: "
                "send `Authorization: Bearer <token>` (see `kuma-cp admin-token`)"
            )
            response = error_response(401, UNAUTHORIZED, details)
            response.headers["WWW-Authenticate"] = 'Bearer realm="kuma"'
            return response
        if request.method in BODY_METHODS and request.mimetype != JSON:
            return error_response(
                415, UNSUPPORTED_MEDIA_TYPE, f"writes must be sent as `Content-Type: {JSON}`"
            )
        return None
