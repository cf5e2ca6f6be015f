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


def test_a_duration_too_long_to_hold_is_a_400_not_a_500(api: Api):
    check = {
        "type": "HealthCheck", "mesh": "default", "name": "long",
        "sources": [{"match": {"service": "*"}}], "destinations": [{"match": {"service": "*"}}],
        "conf": {"passiveChecks": {"unhealthyThreshold": 3, "penaltyInterval": "9" * 30 + "h"}},
    }  # fmt: skip
    r = api.put("/meshes/default/health-checks/long", check)
    assert r.status_code == 400, r.text
    assert r.json()["causes"] == [
        {"field": "conf.passiveChecks.penaltyInterval", "message": "must have a valid value"}
    ]
