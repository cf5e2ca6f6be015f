"""`POST /bootstrap` over real HTTP: 200 with a bootstrap Envoy accepts, 400/401/404 with a clear
message (spec §7, issue 7)."""

from __future__ import annotations

import pytest
import yaml

from kuma import server_tls, tokens
from kuma.config import validate
from kuma.errors import ConfigError
from kuma.server_tls import self_signed
from services.bootstrap.generator import FILE_CREDENTIALS, ads_target
from tests.apply import apply
from tests.bootstrap.servers import dataplane, envoy_validate, make_config, served

pytestmark = pytest.mark.envoy


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
    assert token not in response.text  # Envoy reads it from the file: not in /config_dump
    config = yaml.safe_load(response.text)
    assert config["node"] == {
        "id": "default.backend-1",
        "cluster": "backend",
        "metadata": {"dataplane.admin.port": "9901"},
    }
    assert config["admin"]["address"]["socketAddress"] == {
        "address": "127.0.0.1",
        "portValue": 9901,
    }
    ads = config["dynamicResources"]["adsConfig"]
    assert ads["transportApiVersion"] == "V3"
    assert config["dynamicResources"]["ldsConfig"]["resourceApiVersion"] == "V3"
    client = ads["grpcServices"][0]["googleGrpc"]
    assert client["targetUri"] == "127.0.0.1:5678"
    # TLS, trusting the control plane's own certificate (kuma-dp gave no CA)
    roots = client["channelCredentials"]["sslCredentials"]["rootCerts"]["inlineString"]
    assert roots == server_tls.load(bootstrap.cfg, core.store).cert_pem.decode()
    # the token file, sent as a bearer token on every new stream
    (credential,) = client["callCredentials"]
    plugin = credential["fromPlugin"]
    assert plugin["name"] == client["credentialsFactoryName"] == FILE_CREDENTIALS
    assert plugin["typedConfig"]["secretData"] == {"filename": "/tmp/token"}
    assert plugin["typedConfig"]["headerPrefix"] == "Bearer "
    args = client["channelArgs"]["args"]
    assert args["grpc.ssl_target_name_override"] == {"stringValue": "127.0.0.1"}
    assert "shuffleAddressList" in args["grpc.service_config"]["stringValue"]
    clusters = {c["name"]: c for c in config["staticResources"]["clusters"]}
    assert set(clusters) == {"access_log_sink"}
    sink = clusters["access_log_sink"]["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]
    assert sink["endpoint"]["address"]["pipe"]["path"] == (
        "/tmp/kuma-access-logs-backend-1-default.sock"
    )
    _valid(response.text)


def test_the_ca_kuma_dp_trusts_is_the_one_envoy_trusts(core, bootstrap):
    apply(core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
    ca = self_signed(["ca.example"]).cert_pem.decode()
    body = {
        "mesh": "default",
        "name": "backend-1",
        "dataplaneToken": tokens.issue(core.store, "default", "backend-1"),
        "caCert": ca,
    }
    config = yaml.safe_load(bootstrap.post(body).text)
    client = config["dynamicResources"]["adsConfig"]["grpcServices"][0]["googleGrpc"]
    assert client["channelCredentials"]["sslCredentials"]["rootCerts"]["inlineString"] == ca
    assert "callCredentials" not in client  # no token path given: no token sent
    refused = bootstrap.post({**body, "caCert": "not a certificate"})
    assert refused.status_code == 400 and "caCert" in refused.text


def test_the_access_log_socket_is_where_kuma_dp_asks(core, bootstrap):
    apply(core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
    body = {
        "mesh": "default",
        "name": "backend-1",
        "dataplaneToken": tokens.issue(core.store, "default", "backend-1"),
        "accessLogSocketPath": "/run/kuma-dp-x1/access-logs.sock",
    }
    config = yaml.safe_load(bootstrap.post(body).text)
    (sink,) = config["staticResources"]["clusters"]
    endpoint = sink["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]
    assert endpoint["address"]["pipe"]["path"] == "/run/kuma-dp-x1/access-logs.sock"
    for bad in ("relative.sock", "/" + "x" * 120):
        refused = bootstrap.post({**body, "accessLogSocketPath": bad})
        assert refused.status_code == 400 and "accessLogSocketPath" in refused.text


def test_no_admin_and_no_metadata_when_neither_applies():
    with served(make_config(token=False)) as server:
        apply(server.core, dataplane("web-1", "web", "127.0.0.1:10002:8080"))
        response = server.post({"mesh": "default", "name": "web-1"})
        assert response.status_code == 200, response.text
        config = yaml.safe_load(response.text)
        assert "admin" not in config and "metadata" not in config["node"]
        _valid(response.text)


def test_several_xds_addresses_are_one_grpc_target():
    cfg = make_config(token=False, xds_host="127.0.0.2, 127.0.0.3:5690")
    with served(cfg) as server:
        apply(server.core, dataplane("web-1", "web", "127.0.0.1:10002:8080"))
        response = server.post({"mesh": "default", "name": "web-1", "adminPort": 9902})
        assert response.status_code == 200, response.text
        config = yaml.safe_load(response.text)
        client = config["dynamicResources"]["adsConfig"]["grpcServices"][0]["googleGrpc"]
        assert client["targetUri"] == "ipv4:127.0.0.2:5678,127.0.0.3:5690"
        _valid(response.text)
    # a name is spelled as a DNS target: gRPC would read `xds:5678` as its own xds: scheme
    assert ads_target("xds", 5678) == ("dns:///xds:5678", "xds")
    assert ads_target("[::1]:5679", 5678) == ("[::1]:5679", "::1")
    for hosts in ("127.0.0.2,localhost", "127.0.0.2,[::1]:5691"):
        with pytest.raises(ConfigError, match="XdsHost"):
            validate(make_config(xds_host=hosts))


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
