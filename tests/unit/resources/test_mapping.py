"""The protobuf-JSON mapping of spec §0, Mesh defaults (§3.4), the wire envelope (§4.2) and the
type registry (§3.2)."""

from __future__ import annotations

import pytest

from kuma.errors import ValidationError
from kuma.resources import registry, wire
from kuma.resources.base import Resource
from kuma.resources.mesh import apply_defaults


def roundtrip(type_name, data):
    return registry.encode_spec(registry.decode_spec(type_name, data))


def test_snake_case_in_camel_case_out_unknown_fields_ignored():
    data = {
        "networking": {
            "inbound": [{"interface": "1.1.1.1:1:2", "tags": {"service": "a"}}],
            "transparent_proxying": {"redirect_port": 15001},
            "outbound": [{"interface": ":1", "service": "b", "service_port": 5432, "bogus": 1}],
        },
        "alsoBogus": True,
    }
    assert roundtrip("Dataplane", data) == {
        "networking": {
            "inbound": [{"interface": "1.1.1.1:1:2", "tags": {"service": "a"}}],
            "outbound": [{"interface": ":1", "service": "b", "servicePort": 5432}],
            "transparentProxying": {"redirectPort": 15001},
        }
    }


def test_defaults_are_omitted_but_set_messages_stay():
    assert roundtrip(
        "Mesh", {"mtls": {"enabled": False, "ca": {"builtin": {}}}, "logging": {"backends": []}}
    ) == {"mtls": {"ca": {"builtin": {}}}, "logging": {}}
    assert roundtrip(
        "TrafficRoute", {"conf": [{"weight": 0, "destination": {"service": "a"}}]}
    ) == {"conf": [{"destination": {"service": "a"}}]}


def test_mtls_keeps_protobuf_field_order():
    out = roundtrip("Mesh", {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
    assert list(out["mtls"]) == ["ca", "enabled"]


@pytest.mark.parametrize(
    "text, out",
    [
        ("5s", "5s"),
        ("0.250s", "0.250s"),
        ("1.5s", "1.500s"),
        ("250ms", "0.250s"),
        ("1m", "60s"),
        ("0.000001s", "0.000001s"),
    ],
)
def test_durations_are_strings(text, out):
    spec = {"conf": {"passiveChecks": {"penaltyInterval": text, "unhealthyThreshold": 1}}}
    got = roundtrip("HealthCheck", spec)
    assert got["conf"]["passiveChecks"]["penaltyInterval"] == out


def test_uint64_counters_are_strings_and_timestamps_rfc3339():
    data = {
        "subscriptions": [
            {
                "id": "s1",
                "controlPlaneInstanceId": "cp-1",
                "connectTime": "2018-07-17T16:05:36.995Z",
                "status": {
                    "lastUpdateTime": "2019-07-01T00:00:00+02:00",
                    "total": {"responsesSent": 10, "responsesRejected": "1"},
                },
            }
        ]
    }
    out = roundtrip("DataplaneInsight", data)["subscriptions"][0]
    assert out["connectTime"] == "2018-07-17T16:05:36.995Z"
    assert out["status"]["lastUpdateTime"] == "2019-06-30T22:00:00Z"
    assert out["status"]["total"] == {"responsesSent": "10", "responsesRejected": "1"}


def test_secret_is_a_bare_base64_string():
    spec = registry.decode_spec("Secret", "AAEC/w==")
    assert spec.data == b"\x00\x01\x02\xff"
    assert registry.encode_spec(spec) == "AAEC/w=="
    with pytest.raises(ValidationError):
        registry.decode_spec("Secret", "not base64!")


# --- Mesh defaults --------------------------------------------------------------------------


def test_mesh_defaults_from_nothing():
    spec = apply_defaults(registry.decode_spec("Mesh", {}))
    assert registry.encode_spec(spec) == {"mtls": {"ca": {"builtin": {}}}}


def test_mesh_defaults_keep_provided_ca_and_fill_prometheus():
    spec = apply_defaults(
        registry.decode_spec(
            "Mesh",
            {
                "mtls": {"enabled": True, "ca": {"provided": {}}},
                "metrics": {"prometheus": {}},
            },
        )
    )
    assert registry.encode_spec(spec) == {
        "mtls": {"ca": {"provided": {}}, "enabled": True},
        "metrics": {"prometheus": {"port": 5670, "path": "/metrics"}},
    }
    custom = apply_defaults(
        registry.decode_spec("Mesh", {"metrics": {"prometheus": {"port": 1234, "path": "/stats"}}})
    )
    assert custom.metrics.prometheus.port == 1234
    assert custom.metrics.prometheus.path == "/stats"


# --- wire envelope --------------------------------------------------------------------------


def test_wire_round_trip_of_a_dataplane_and_a_mesh():
    body = {
        "type": "Dataplane",
        "mesh": "default",
        "name": "dp-1",
        "networking": {
            "inbound": [{"interface": "127.0.0.1:9090:9091", "tags": {"service": "sample"}}]
        },
    }
    res = wire.from_json(body)
    assert (res.type, res.mesh, res.name) == ("Dataplane", "default", "dp-1")
    assert wire.to_json(res) == body
    mesh = wire.from_json({"type": "Mesh", "name": "mesh-1", "mtls": {"ca": {"builtin": {}}}})
    assert mesh.mesh == "mesh-1"
    assert wire.to_json(mesh) == {"type": "Mesh", "name": "mesh-1", "mtls": {"ca": {"builtin": {}}}}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"type": "Banana", "name": "x"}, "type"),
        ({"name": "x"}, "type"),
        ({"type": 1, "name": "x"}, "type"),
        ({"type": "Mesh", "name": ["x"]}, "name"),
    ],
)
def test_wire_rejects_bad_meta(body, field):
    with pytest.raises(ValidationError) as info:
        wire.from_json(body)
    assert info.value.violations[0].field == field


def test_wire_rejects_non_objects_and_bad_text():
    with pytest.raises(ValidationError):
        wire.from_json(["a"])
    with pytest.raises(ValidationError, match="malformed JSON"):
        wire.parse_json_text("{nope")
    with pytest.raises(ValidationError, match="malformed YAML"):
        wire.parse_yaml_documents("a: [1,\n")
    assert wire.parse_yaml_documents("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    "name, ok", [("web-01_a", True), ("Web", False), ("a.b", False), ("", True), ("ü", False)]
)
def test_name_character_rule(name, ok):
    got = wire.name_violations("name", name)
    assert (got == []) is ok
    if not ok:
        assert got[0].message == (
            "invalid characters. Valid characters are numbers, lowercase latin letters "
            "and '-', '_' symbols."
        )


# --- registry -------------------------------------------------------------------------------


def test_registry_matches_spec_3_2():
    rows = {(t.name, t.plural, t.kumactl_get, t.kumactl_delete, t.k8s_kind) for t in registry.TYPES}
    assert rows == {
        ("Mesh", "", "meshes", "mesh", "Mesh"),
        ("Dataplane", "dataplanes", "dataplanes", "dataplane", "Dataplane"),
        ("DataplaneInsight", "dataplane-insights", None, None, "DataplaneInsight"),
        ("HealthCheck", "health-checks", "healthchecks", "healthcheck", "HealthCheck"),
        ("ProxyTemplate", "proxytemplates", "proxytemplates", "proxytemplate", "ProxyTemplate"),
        (
            "TrafficPermission",
            "traffic-permissions",
            "traffic-permissions",
            "traffic-permission",
            "TrafficPermission",
        ),
        ("TrafficLog", "traffic-logs", "traffic-logs", "traffic-log", "TrafficLog"),
        ("TrafficRoute", "traffic-routes", "traffic-routes", "traffic-route", "TrafficRoute"),
        ("Secret", None, None, None, "Secret"),
    }
    assert registry.by_plural("traffic-routes").name == "TrafficRoute"
    assert registry.by_plural("secrets") is None
    assert registry.by_kumactl_delete("healthcheck").name == "HealthCheck"


def test_resource_equality_ignores_store_bookkeeping():
    spec = registry.decode_spec("Mesh", {})
    assert Resource("Mesh", "m", "m", spec, 1, revision=3) == Resource("Mesh", "m", "m", spec, 1)
