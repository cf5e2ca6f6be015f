"""`POST /tokens` (spec §5.1, served by the API here): issue a dataplane token. A write: the
admin credential is required (the write guard sees POST), or a caller on this host."""

from __future__ import annotations

from flask import Blueprint, Response, request

from kuma import tokens
from kuma.errors import ValidationError, Violation
from kuma.resources.wire import parse_json_text
from kuma.store.base import ResourceStore
from services.api.errors import titled

TITLE = "Invalid request"


def tokens_blueprint(store: ResourceStore) -> Blueprint:
    bp = Blueprint("tokens", __name__)

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
            if violations:
                raise ValidationError(violations)
            token = tokens.issue(store, fields["mesh"], fields["name"])
        return Response(token, status=200, mimetype="text/plain")

    return bp
