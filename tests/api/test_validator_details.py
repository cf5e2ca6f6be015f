"""Issue 19 item 3 through the real API, on each store: the validator details where this product
answered differently from Kuma 0.3.2. A refused write gets Kuma's error body and changes
nothing; what Kuma accepts is stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api

INVALID = "Resource is not valid"
HOST_PORT = "has to be in format of HOST:PORT"
NO_CHECKS = "must have either active or passive checks configured"
SERVICE_ANY = [{"match": {"service": "*"}}]


def _mesh(name: str, address: str) -> dict[str, Any]:
    backend = {"name": "logstash", "tcp": {"address": address}}
    return {"type": "Mesh", "name": name, "logging": {"backends": [backend]}}


def _health_check(conf: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "HealthCheck",
        "mesh": "default",
        "name": "hc-1",
        "sources": SERVICE_ANY,
        "destinations": SERVICE_ANY,
        "conf": conf,
    }


def _refused(title: str, causes: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "title": title,
        "details": INVALID,
        "causes": [{"field": f, "message": m} for f, m in causes],
    }


@pytest.mark.parametrize("address", ["wrong-format:234:234", "::1:5000", "[::1]", ":5000"])
def test_a_tcp_backend_address_splits_like_gos_net_split_host_port(api: Api, address: str):
    created = api.put("/meshes/logs", _mesh("logs", address))
    assert (created.status_code, created.json()) == (
        400,
        _refused("Could not create a resource", [("logging.backends[0].tcp.address", HOST_PORT)]),
    )
    assert api.get("/meshes/logs").status_code == 404  # nothing stored
    # An update is refused alike and leaves the stored Mesh as it was.
    assert api.put("/meshes/logs", _mesh("logs", "[::1]:5000")).status_code == 201
    updated = api.put("/meshes/logs", _mesh("logs", address))
    assert (updated.status_code, updated.json()["causes"]) == (
        400,
        [{"field": "logging.backends[0].tcp.address", "message": HOST_PORT}],
    )
    stored = api.get("/meshes/logs").json()
    assert stored["logging"]["backends"][0]["tcp"] == {"address": "[::1]:5000"}


@pytest.mark.parametrize(
    "conf",
    [
        {"activeChecks": {}, "passiveChecks": {}},
        {"activeChecks": {}},
        {"passiveChecks": {}},
        {"activeChecks": {"unhealthyThreshold": 0}},  # a zero is protobuf's default: still empty
        {},
    ],
)
def test_empty_health_check_blocks_count_as_absent(api: Api, conf: dict[str, Any]):
    """The only violation is on `conf`, as Kuma's `reflect.DeepEqual` with the empty message
    made it; no cause about the empty block's fields."""
    response = api.put("/meshes/default/health-checks/hc-1", _health_check(conf))
    assert (response.status_code, response.json()) == (
        400,
        _refused("Could not create a resource", [("conf", NO_CHECKS)]),
    )
    assert api.get("/meshes/default/health-checks/hc-1").status_code == 404


def test_an_empty_block_beside_a_valid_one_is_accepted(api: Api):
    """Its fields are not checked; it is kept as sent (protobuf-JSON writes a set message
    field), and configures nothing (services/xds/generator/health_checks.py)."""
    conf = {"activeChecks": {}, "passiveChecks": {"unhealthyThreshold": 3, "penaltyInterval": "5s"}}
    assert api.put("/meshes/default/health-checks/hc-1", _health_check(conf)).status_code == 201
    assert api.get("/meshes/default/health-checks/hc-1").json()["conf"] == conf
