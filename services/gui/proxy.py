"""`/api/...`: the API under the GUI's own origin (as Kuma's GUI did, spec §12.4), so pages
and scripts need no CORS. Read-only: GET and HEAD are forwarded, anything else is refused here
(the API behind may trust this host's loopback for writes). No header of the browser's is
passed on: no cookie or credential reaches the API through the GUI."""

from __future__ import annotations

import json

from flask import Response, request

from kuma.errors import error_body
from services.gui.api_client import ApiClient, ApiUnavailable

READ_METHODS = ("GET", "HEAD")
_PASSED_BACK = ("Content-Type",)


def forward(client: ApiClient, path: str) -> Response:
    if request.method not in READ_METHODS:
        refused = error(405, "Method Not Allowed", "the GUI serves the API read-only")
        refused.headers["Allow"] = ", ".join(READ_METHODS)
        return refused
    try:
        answer = client.raw("/" + path, list(request.args.items(multi=True)))
    except ApiUnavailable as exc:
        return error(exc.status, exc.title, exc.details)
    body = answer.content
    # A list's `next` is an absolute URL of the API: point it back through this proxy.
    body = body.replace(
        f'"next":"{client.base_url}/'.encode(), f'"next":"{request.host_url}api/'.encode()
    )
    response = Response(body, status=answer.status_code)
    for name in _PASSED_BACK:
        if name in answer.headers:
            response.headers[name] = answer.headers[name]
    return response


def error(status: int, title: str, details: str) -> Response:
    """Kuma's error shape."""
    return Response(
        json.dumps(error_body(title, details)), status=status, mimetype="application/json"
    )
