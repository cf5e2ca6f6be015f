"""Every error the API answers, mapped to HTTP in this one place.

Handlers raise `kuma.errors` exceptions; `titled(...)` names the operation that failed (Kuma's
`title`), and the handlers registered here turn them into Kuma's body
`{"title", "details", "causes"?}` with the error's own `http_status` and `details`.
Framework errors (unknown route, method not allowed) get the same body shape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from kuma.errors import KumaError, Violation, error_body
from services.api.responses import json_response

log = logging.getLogger(__name__)

INTERNAL = "Internal Server Error"


class ApiError(Exception):
    """A KumaError raised while doing `title` (e.g. "Could not create a resource")."""

    def __init__(self, title: str, error: KumaError):
        super().__init__(f"{title}: {error}")
        self.title = title
        self.error = error


@contextmanager
def titled(title: str) -> Iterator[None]:
    """Attach Kuma's title to any error raised inside; unexpected ones become a plain 500."""
    try:
        yield
    except KumaError as exc:
        raise ApiError(title, exc) from exc
    except HTTPException:
        raise
    except Exception as exc:
        log.exception("%s", title)
        raise ApiError(title, KumaError()) from exc


def error_response(
    status: int, title: str, details: str, causes: list[Violation] | None = None
) -> Response:
    return json_response(error_body(title, details, causes), status)


def _from_api_error(exc: ApiError) -> Response:
    error = exc.error
    if error.http_status >= 500:
        log.warning("%s: %s", exc.title, error)
    causes = list(getattr(error, "violations", []) or [])
    return error_response(error.http_status, exc.title, error.details, causes)


def _from_kuma_error(exc: KumaError) -> Response:
    return _from_api_error(ApiError(INTERNAL if exc.http_status >= 500 else "Bad Request", exc))


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    response = error_response(status, exc.name, exc.description or exc.name)
    if exc.response is None:
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
    return response


def _from_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, INTERNAL, INTERNAL)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _from_api_error)
    app.register_error_handler(KumaError, _from_kuma_error)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _from_unexpected)
