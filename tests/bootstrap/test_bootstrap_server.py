"""`POST /bootstrap` over real HTTP: 200 with a bootstrap Envoy accepts, 400/401/404 with a clear
message (spec §7, issue 7)."""

from __future__ import annotations

import yaml

from kuma import tokens
from tests.apply import apply
from tests.bootstrap.servers import dataplane, envoy_validate, make_config, served


def _valid(text: str) -> None:
    result = envoy_validate(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bootstrap_for_an_existing_dataplane(core, bootstrap):
    apply(core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
    token = tokens.issue(core.store, "default", "backend-1")
    response = bootstrap.post(
        {
            "mesh": "default",
            "name": "backend-1",
            "adminPort": 9901,
            "dataplaneTokenPath": "/tmp/token",
            "dataplaneToken": token,
        }
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/x-yaml")
    config = yaml.safe_load(response.text)
    assert config["node"] == {
        "id": "default.backend-1",
        "cluster": "backend",
        "metadata": {"dataplaneTokenPath": "/tmp/token", "dataplane.admin.port": "9901"},
    }
    assert config["admin"]["address"]["socketAddress"] == {
        "address": "127.0.0.1",
        "portValue": 9901,
    }
    ads = config["dynamicResources"]["adsConfig"]
    assert ads["transportApiVersion"] == "V3"
    assert config["dynamicResources"]["ldsConfig"]["resourceApiVersion"] == "V3"
    clusters = {c["name"]: c for c in config["staticResources"]["clusters"]}
    ads_cluster = clusters["ads_cluster"]
    assert ads_cluster["type"] == "STRICT_DNS"
    assert "tcpKeepalive" in ads_cluster["upstreamConnectionOptions"]
    assert ads_cluster["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"] == {
        "address": {"socketAddress": {"address": "127.0.0.1", "portValue": 5678}}
    }
    sink = clusters["access_log_sink"]["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]
    assert sink["endpoint"]["address"]["pipe"]["path"] == (
        "/tmp/kuma-access-logs-backend-1-default.sock"
    )
    _valid(response.text)


def test_no_admin_and_no_metadata_when_neither_applies():
    with served(make_config(token=False)) as server:
        apply(server.core, dataplane("web-1", "web", "127.0.0.1:10002:8080"))
        response = server.post({"mesh": "default", "name": "web-1"})
        assert response.status_code == 200, response.text
        config = yaml.safe_load(response.text)
        assert "admin" not in config and "metadata" not in config["node"]
        _valid(response.text)


def test_several_xds_addresses_and_a_dns_name():
    cfg = make_config(token=False, xds_host="127.0.0.2, localhost:5690,[::1]:5691")
    with served(cfg) as server:
        apply(server.core, dataplane("web-1", "web", "127.0.0.1:10002:8080"))
        response = server.post({"mesh": "default", "name": "web-1", "adminPort": 9902})
        assert response.status_code == 200, response.text
        config = yaml.safe_load(response.text)
        ads = next(c for c in config["staticResources"]["clusters"] if c["name"] == "ads_cluster")
        hosts = [
            lb["endpoint"]["address"]["socketAddress"]
            for lb in ads["loadAssignment"]["endpoints"][0]["lbEndpoints"]
        ]
        assert hosts == [
            {"address": "127.0.0.2", "portValue": 5678},
            {"address": "localhost", "portValue": 5690},
            {"address": "::1", "portValue": 5691},
        ]
        _valid(response.text)


def test_malformed_bodies_are_400(bootstrap):
    for body in (b"not json", b"[1]", {"mesh": "default"}, {"mesh": "", "name": "x"}):
        response = bootstrap.post(body)
        assert response.status_code == 400, (body, response.text)
    response = bootstrap.post({"mesh": "default", "name": "x", "adminPort": "nine"})
    assert response.status_code == 400
    assert "adminPort" in response.json()["details"]


def test_missing_dataplane_is_404_after_a_valid_token(core, bootstrap):
    token = tokens.issue(core.store, "default", "ghost")
    response = bootstrap.post({"mesh": "default", "name": "ghost", "dataplaneToken": token})
    assert response.status_code == 404
    assert "Did you first apply a Dataplane resource?" in response.json()["details"]


def test_missing_or_foreign_token_is_401(core, bootstrap):
    apply(core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
    apply(core, dataplane("redis-1", "redis", "127.0.0.1:10003:6379"))
    missing = bootstrap.post({"mesh": "default", "name": "backend-1"})
    assert missing.status_code == 401
    assert missing.json()["details"] == "dataplane token is missing"

    # redis-1's token does not open backend-1's bootstrap
    foreign = tokens.issue(core.store, "default", "redis-1")
    response = bootstrap.post({"mesh": "default", "name": "backend-1", "dataplaneToken": foreign})
    assert response.status_code == 401
    assert "is different than in token: redis-1" in response.json()["details"]

    garbage = bootstrap.post({"mesh": "default", "name": "backend-1", "dataplaneToken": "x.y.z"})
    assert garbage.status_code == 401 and "invalid" in garbage.json()["details"]

    # an unknown Dataplane without a token learns nothing: 401, not 404
    assert bootstrap.post({"mesh": "default", "name": "nobody"}).status_code == 401


def test_verification_switched_off_needs_no_token():
    with served(make_config(token=False)) as server:
        apply(server.core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
        assert server.post({"mesh": "default", "name": "backend-1"}).status_code == 200


def test_loopback_caller_may_omit_the_token_but_not_present_a_wrong_one():
    with served(make_config(trust_loopback=True)) as server:
        apply(server.core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
        apply(server.core, dataplane("redis-1", "redis", "127.0.0.1:10003:6379"))
        assert server.post({"mesh": "default", "name": "backend-1"}).status_code == 200
        foreign = tokens.issue(server.core.store, "default", "redis-1")
        response = server.post({"mesh": "default", "name": "backend-1", "dataplaneToken": foreign})
        assert response.status_code == 401
