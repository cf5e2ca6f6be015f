"""Strict JSON types, as protobuf-JSON reads them: a boolean is not a number, a string or a
number is not a boolean; quoted integers stay accepted."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": {"prometheus": {"port": False}}}, "metrics.prometheus.port"),
        ({"metrics": {"prometheus": {"port": True}}}, "metrics.prometheus.port"),
        ({"mtls": {"enabled": "true", "ca": {"builtin": {}}}}, "mtls.enabled"),
        ({"mtls": {"enabled": 1, "ca": {"builtin": {}}}}, "mtls.enabled"),
    ],
)
def test_wrongly_typed_fields_are_refused_and_nothing_changes(api: Api, body, field):
    r = api.put("/meshes/strict", {"type": "Mesh", "name": "strict", **body})
    assert r.status_code == 400, r.text
    assert [c["field"] for c in r.json()["causes"]] == [field]
    assert api.get("/meshes/strict").status_code == 404


def test_a_quoted_port_is_still_a_port(api: Api):
    mesh = {"type": "Mesh", "name": "quoted", "metrics": {"prometheus": {"port": "5670"}}}
    assert api.put("/meshes/quoted", mesh).status_code == 201
    assert api.get("/meshes/quoted").json()["metrics"]["prometheus"]["port"] == 5670


def _health_check(name: str, penalty_interval: str) -> dict[str, object]:
    return {
        "type": "HealthCheck", "mesh": "default", "name": name,
        "sources": [{"match": {"service": "*"}}], "destinations": [{"match": {"service": "*"}}],
        "conf": {"passiveChecks": {"unhealthyThreshold": 3, "penaltyInterval": penalty_interval}},
    }  # fmt: skip


def test_a_duration_too_long_to_hold_is_a_400_not_a_500(api: Api):
    check = _health_check("long", "9" * 30 + "h")
    r = api.put("/meshes/default/health-checks/long", check)
    assert r.status_code == 400, r.text
    assert r.json()["causes"] == [
        {"field": "conf.passiveChecks.penaltyInterval", "message": "must have a valid value"}
    ]


def test_a_whole_number_float_is_an_integer_as_protobuf_json_reads_it(api: Api):
    route = {
        "type": "TrafficRoute", "mesh": "default", "name": "floats",
        "sources": [{"match": {"service": "*"}}], "destinations": [{"match": {"service": "b"}}],
        "conf": [{"weight": 2790.0, "destination": {"service": "b"}}],
    }  # fmt: skip
    assert api.put("/meshes/default/traffic-routes/floats", route).status_code == 201
    assert api.get("/meshes/default/traffic-routes/floats").json()["conf"][0]["weight"] == 2790


@pytest.mark.parametrize("weight", [2.5, True, -1.0, 2.0**32])
def test_a_number_that_is_no_uint32_is_refused(api: Api, weight: object):
    route = {
        "type": "TrafficRoute", "mesh": "default", "name": "nouint",
        "sources": [{"match": {"service": "*"}}], "destinations": [{"match": {"service": "b"}}],
        "conf": [{"weight": weight, "destination": {"service": "b"}}],
    }  # fmt: skip
    r = api.put("/meshes/default/traffic-routes/nouint", route)
    assert r.status_code == 400, r.text
    assert r.json()["causes"] == [
        {"field": "conf[0].weight", "message": "must be an unsigned integer"}
    ]
    assert api.get("/meshes/default/traffic-routes/nouint").status_code == 404


@pytest.mark.parametrize("interval", ["1s" * 9, "9" * 14 + "s", " 5s"])
def test_a_duration_beyond_the_documented_pattern_is_refused(api: Api, interval: str):
    check = _health_check("unbounded", interval)
    r = api.put("/meshes/default/health-checks/unbounded", check)
    assert r.status_code == 400, r.text
    assert api.get("/meshes/default/health-checks/unbounded").status_code == 404


@pytest.mark.parametrize(
    "outbound", [{"servicePort": True}, {"servicePort": "x"}, {"servicePort": 2.5}]
)
def test_a_dataplane_port_is_a_uint32_not_a_boolean(api: Api, outbound: dict[str, object]):
    dataplane = {
        "type": "Dataplane", "mesh": "default", "name": "typed",
        "networking": {
            "inbound": [{"interface": "10.0.0.1:80:8080", "tags": {"service": "web"}}],
            "outbound": [{"interface": ":3000", "service": "db", **outbound}],
        },
    }  # fmt: skip
    r = api.put("/meshes/default/dataplanes/typed", dataplane)
    assert r.status_code == 400, r.text
    fields = [c["field"] for c in r.json()["causes"]]
    assert fields == ["networking.outbound[0].servicePort"]
    assert api.get("/meshes/default/dataplanes/typed").status_code == 404


@pytest.mark.parametrize(
    ("port", "taken"),
    [("0005", 5), ("4294967295", 4294967295), ("4294967296", None), (" 5", None),
     ("1_0", None), ("+5", None), ("٥", None), (5.5, None)],
)  # fmt: skip
def test_a_quoted_port_is_digits_within_uint32(api: Api, port: object, taken: int | None):
    mesh = {"type": "Mesh", "name": "quoted2", "metrics": {"prometheus": {"port": port}}}
    r = api.put("/meshes/quoted2", mesh)
    if taken is None:
        assert r.status_code == 400, r.text
        assert api.get("/meshes/quoted2").status_code == 404
    else:
        assert r.status_code == 201, r.text
        assert api.get("/meshes/quoted2").json()["metrics"]["prometheus"]["port"] == taken
        assert api.delete("/meshes/quoted2").status_code == 200


@pytest.mark.parametrize(
    ("interval", "stored"), [("80ns", "0.000001s"), ("0s5s", "5s"), ("0.0000015s", "0.000002s")]
)
def test_a_positive_duration_stays_positive_at_microsecond_resolution(
    api: Api, interval: str, stored: str
):
    check = _health_check("tiny", interval)
    r = api.put("/meshes/default/health-checks/tiny", check)
    assert r.status_code in (200, 201), r.text
    got = api.get("/meshes/default/health-checks/tiny").json()
    assert got["conf"]["passiveChecks"]["penaltyInterval"] == stored
