"""`POST /tokens`: dataplane tokens issued by the API, verifiable by bootstrap and SDS."""

from __future__ import annotations

import pytest

from kuma import tokens
from kuma.errors import UnauthorizedError


def test_issue_token_verifies_for_that_dataplane_only(api):
    response = api.http.post(api.url + "/tokens", json={"mesh": "default", "name": "redis-1"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    token = response.text
    assert not token.endswith("\n")
    tokens.verify(api.core.store, token, "default", "redis-1")
    with pytest.raises(UnauthorizedError):
        tokens.verify(api.core.store, token, "default", "backend-1")


def test_missing_fields_are_kuma_400(api):
    response = api.http.post(api.url + "/tokens", json={})
    assert response.status_code == 400
    assert response.json() == {
        "title": "Invalid request",
        "details": "Resource is not valid",
        "causes": [
            {"field": "name", "message": "cannot be empty"},
            {"field": "mesh", "message": "cannot be empty"},
        ],
    }
    json_type = {"Content-Type": "application/json"}
    malformed = api.http.post(api.url + "/tokens", data="{nope", headers=json_type)
    assert malformed.status_code == 400


def test_tokens_need_the_admin_credential_off_loopback(serve_session):
    strict = serve_session(trust_loopback=False, admin_token="s3cret")
    body = {"mesh": "default", "name": "redis-1"}
    assert strict.http.post(strict.url + "/tokens", json=body).status_code == 401
    ok = strict.http.post(
        strict.url + "/tokens", json=body, headers={"Authorization": "Bearer s3cret"}
    )
    assert ok.status_code == 200
