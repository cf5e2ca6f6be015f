"""`kumactl generate dataplane-token --valid-for`: the lifetime goes to `POST /tokens` as
`validFor`; a bad one is refused before any request."""

from __future__ import annotations

import json

import jwt

from tests.kumactl.conftest import Canned, ControlPlane, Kumactl, use


def test_valid_for_reaches_the_control_plane(kumactl: Kumactl, shared_cp: ControlPlane):
    use(kumactl, shared_cp)
    result = kumactl("generate", "dataplane-token", "--dataplane", "dp-1", "--valid-for", "24h")
    assert result.exit_code == 0, result.stderr
    claims = jwt.decode(result.stdout, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 24 * 3600
    plain = kumactl("generate", "dataplane-token", "--dataplane", "dp-1").stdout
    claims = jwt.decode(plain, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 365 * 24 * 3600  # the control plane's default


def use_stub(kumactl: Kumactl, stub_server) -> Canned:
    url, canned = stub_server
    canned.body = b'{"tagline": "Kuma"}'
    kumactl("config", "control-planes", "add", "--name", "stub", "--address", url)
    canned.body = b"eyJhbGciOi.token.sig"
    return canned


def test_the_flag_is_sent_as_valid_for(kumactl: Kumactl, stub_server):
    canned = use_stub(kumactl, stub_server)
    result = kumactl("generate", "dataplane-token", "--dataplane", "dp-1", "--valid-for", "1h30m")
    assert (result.exit_code, result.stdout) == (0, "eyJhbGciOi.token.sig")
    _, path, _, body = canned.seen[-1]
    assert (path, json.loads(body)) == (
        "/tokens",
        {"mesh": "default", "name": "dp-1", "validFor": "1h30m"},
    )


def test_a_bad_valid_for_is_refused_locally(kumactl: Kumactl, stub_server):
    canned = use_stub(kumactl, stub_server)
    seen = len(canned.seen or [])
    for bad in ("forever", "0", "-5m"):
        result = kumactl("generate", "dataplane-token", "--dataplane", "dp", "--valid-for", bad)
        assert result.exit_code == 1
        assert result.stderr == (
            f'Error: invalid argument "{bad}" for "--valid-for" flag: expected a positive '
            'duration such as "24h"\n'
        )
    assert len(canned.seen or []) == seen
