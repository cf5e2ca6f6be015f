"""`POST /tokens` (spec §5.1, served by the API here): issue a dataplane token. A write: the
admin credential is required (the write guard sees POST), or a caller on this host.

Body: `{"mesh": ..., "name": ..., "validFor": "24h"}`. `validFor` is a Go duration, positive;
without it the token lives `adminServer.apis.dataplaneToken.defaultValidFor` (no expiry only when
that setting is 0: a caller cannot ask for a token that never expires)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, request

from kuma import tokens
from kuma.config import DataplaneTokenApiConfig
from kuma.durations import parse_duration
from kuma.errors import ValidationError, Violation
from kuma.resources.wire import parse_json_text
from kuma.store.base import ResourceStore
from services.api.errors import titled

TITLE = "Invalid request"
DEFAULT_VALID_FOR = DataplaneTokenApiConfig().default_valid_for
VALID_FOR_EXAMPLE = 'must be a positive duration such as "24h" or "720h"'


def _valid_for(value: Any) -> tuple[float | None, list[Violation]]:
    """The lifetime `validFor` asks, in seconds (None: not given), and what is wrong with it."""
    if value is None:
        return None, []
    if not isinstance(value, str):
        return None, [Violation("validFor", VALID_FOR_EXAMPLE)]
    try:
        parsed = parse_duration(value)
    except ValueError:
        return None, [Violation("validFor", VALID_FOR_EXAMPLE)]
    if parsed < timedelta(seconds=1):
        return None, [Violation("validFor", VALID_FOR_EXAMPLE)]
    return parsed.total_seconds(), []


def tokens_blueprint(
    store: ResourceStore, default_valid_for: timedelta = DEFAULT_VALID_FOR
) -> Blueprint:
    """`default_valid_for`: the lifetime of a token that asks none (0: no expiry)."""
    bp = Blueprint("tokens", __name__)
    default_ttl = default_valid_for.total_seconds() or None

    @bp.post("/tokens")
    def issue_token() -> Response:
        with titled(TITLE):
            body = parse_json_text(request.get_data())
            if not isinstance(body, dict):
                raise ValidationError(details="body must be a JSON object")
            fields = {k: body.get(k, "") for k in ("name", "mesh")}
            violations = [Violation(k, "cannot be empty") for k, v in fields.items() if not v] + [
                Violation(k, "must be a string")
                for k, v in fields.items()
                if v and not isinstance(v, str)
            ]
            ttl, invalid = _valid_for(body.get("validFor"))
            violations += invalid
            if violations:
                raise ValidationError(violations)
            token = tokens.issue(
                store, fields["mesh"], fields["name"], ttl if ttl is not None else default_ttl
            )
        return Response(token, status=200, mimetype="text/plain")

    return bp
