"""JSON responses: compact (whitespace is not significant, spec §4) and fast."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(text, status=status, mimetype=JSON)


def empty_response(status: int = 200) -> Response:
    """PUT/DELETE success: a status and no body (spec §4.4, §4.5)."""
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response
