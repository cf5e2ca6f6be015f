"""`POST /tokens` with a lifetime: `validFor`, else
`adminServer.apis.dataplaneToken.defaultValidFor` (0: no expiry); a bad `validFor` is Kuma's 400."""

from __future__ import annotations

import jwt
import pytest

from kuma import tokens

BODY = {"mesh": "default", "name": "dp-1"}


def lifetime(token: str) -> int | None:
    claims = jwt.decode(token, options={"verify_signature": False})
    return claims["exp"] - claims["iat"] if "exp" in claims else None


def test_valid_for_sets_the_expiry(api):
    answer = api.http.post(api.url + "/tokens", json={**BODY, "validFor": "24h"})
    assert answer.status_code == 200, answer.text
    assert lifetime(answer.text) == 24 * 3600
    assert tokens.verify(api.core.store, answer.text, "default", "dp-1").expires_at


def test_without_valid_for_the_default_lifetime_applies(api):
    answer = api.http.post(api.url + "/tokens", json=BODY)
    assert lifetime(answer.text) == 365 * 24 * 3600


def test_the_default_lifetime_is_configurable(serve_session):
    env = {"KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_DEFAULT_VALID_FOR": "720h"}
    month = serve_session(env=env, trust_loopback=True)
    assert lifetime(month.http.post(month.url + "/tokens", json=BODY).text) == 30 * 24 * 3600
    never = serve_session(
        env={"KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_DEFAULT_VALID_FOR": "0"}, trust_loopback=True
    )
    assert lifetime(never.http.post(never.url + "/tokens", json=BODY).text) is None
    # a caller cannot ask for a token that never expires
    assert never.http.post(never.url + "/tokens", json={**BODY, "validFor": "0"}).status_code == 400


@pytest.mark.parametrize("valid_for", ["0", "0s", "-1h", "500ms", "forever", "24", 86400, True, ""])
def test_a_bad_valid_for_is_kuma_400(api, valid_for):
    answer = api.http.post(api.url + "/tokens", json={**BODY, "validFor": valid_for})
    assert answer.status_code == 400
    assert answer.json() == {
        "title": "Invalid request",
        "details": "Resource is not valid",
        "causes": [
            {"field": "validFor", "message": 'must be a positive duration such as "24h" or "720h"'}
        ],
    }
