"""The GUI's aggregates: mesh insights (counts without paging), the policies that select a
dataplane (the xDS generator's own choice), and what the xDS replicas publish (on both stores)."""

from __future__ import annotations

from typing import Any

import pytest

from kuma import heartbeat
from services.api import insight_routes
from tests.api.conftest import Api
from tests.api.samples import SAMPLES, body, dataplane_spec


@pytest.fixture(autouse=True)
def always_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's writes change the answer at once (the tests reuse one served app)."""
    monkeypatch.setattr(insight_routes, "FRESH_FOR", 0.0)


def _put(api: Api, plural: str, name: str, spec: dict[str, Any], mesh: str = "default") -> None:
    type_ = SAMPLES[plural][0]
    r = api.put(f"/meshes/{mesh}/{plural}/{name}", body(type_, mesh, name, spec))
    assert r.status_code == 201, r.text


def _subscription(sid: str, cp: str, *, open_: bool, rejected: int = 0) -> dict[str, Any]:
    sub: dict[str, Any] = {
        "id": sid,
        "controlPlaneInstanceId": cp,
        "connectTime": "2024-01-01T00:00:00Z",
        "status": {
            "lastUpdateTime": f"2024-01-01T00:00:{10 + rejected:02d}Z",
            "total": {"responsesSent": "5", "responsesRejected": str(rejected)},
            "lds": {"responsesRejected": str(rejected)},
        },
    }
    if not open_:
        sub["disconnectTime"] = "2024-01-01T00:01:00Z"
    return sub


def _seed_dataplanes(api: Api) -> None:
    for name in ("web-1", "web-2", "web-3"):
        _put(api, "dataplanes", name, dataplane_spec("web"))
    _put(
        api,
        "dataplane-insights",
        "web-1",
        {"subscriptions": [_subscription("a", "cp-1", open_=True)]},
    )
    _put(
        api,
        "dataplane-insights",
        "web-2",
        {"subscriptions": [_subscription("b", "cp-1", open_=False, rejected=2)]},
    )


def test_mesh_insight_counts_dataplanes_by_status_and_policies_by_kind(api: Api):
    _seed_dataplanes(api)
    _put(api, "traffic-permissions", "p1", SAMPLES["traffic-permissions"][1])
    _put(api, "traffic-permissions", "p2", SAMPLES["traffic-permissions"][1])
    _put(api, "traffic-routes", "r1", SAMPLES["traffic-routes"][1])
    got = api.get("/mesh-insights/default").json()
    assert got["type"] == "MeshInsight" and got["name"] == "default"
    assert got["dataplanes"] == {"total": 3, "online": 1, "offline": 2}
    assert got["policies"]["TrafficPermission"] == {"total": 2}
    assert got["policies"]["TrafficRoute"] == {"total": 1}
    assert got["policies"]["HealthCheck"] == {"total": 0}
    assert "Dataplane" not in got["policies"] and "DataplaneInsight" not in got["policies"]
    listed = api.get("/mesh-insights").json()
    assert listed["total"] == 1 and listed["items"] == [got] and listed["next"] is None


def test_mesh_insight_of_a_missing_mesh_is_kumas_404(api: Api):
    r = api.get("/mesh-insights/nope")
    assert r.status_code == 404
    assert r.json() == {"title": "Could not retrieve a mesh insight", "details": "Not found"}


def test_policies_for_a_dataplane_are_the_generators_choice(api: Api):
    spec = dataplane_spec("web")
    spec["networking"]["outbound"] = [{"interface": ":10000", "service": "backend"}]
    _put(api, "dataplanes", "web-1", spec)
    for plural in ("traffic-permissions", "traffic-logs", "traffic-routes", "proxytemplates"):
        _put(api, plural, "chosen", SAMPLES[plural][1])
    # A permission for another destination, and a less specific route: not chosen.
    _put(api, "traffic-permissions", "other", SAMPLES["traffic-permissions"][2])
    wide = {
        "sources": [{"match": {"service": "*"}}],
        "destinations": [{"match": {"service": "*"}}],
        "conf": [{"weight": 100, "destination": {"service": "backend"}}],
    }
    _put(api, "traffic-routes", "wide", wide)
    _put(api, "health-checks", "hc", SAMPLES["health-checks"][1])
    got = api.get("/meshes/default/dataplanes/web-1/policies").json()

    def names(kind: str, where: str) -> list[str]:
        found = [i for i in got["items"] if i["type"] == where]
        return [p["name"] for i in found for p in i["matchedPolicies"].get(kind, [])]

    assert names("ProxyTemplate", "dataplane") == ["chosen"]
    # The inbound is web: "other" lets backend reach web; "chosen" is for backend.
    assert names("TrafficPermission", "inbound") == ["other"]
    assert names("TrafficRoute", "outbound") == ["chosen"]
    assert names("TrafficLog", "outbound") == ["chosen"]
    assert names("HealthCheck", "service") == ["hc"]
    outbound = next(i for i in got["items"] if i["type"] == "outbound")
    assert (outbound["name"], outbound["service"]) == (":10000", "backend")
    assert outbound["matchedPolicies"]["TrafficRoute"][0]["type"] == "TrafficRoute"
    assert got["total"] == len(got["items"]) == 4


def test_policies_of_a_missing_dataplane_is_kumas_404(api: Api):
    r = api.get("/meshes/default/dataplanes/nope/policies")
    assert r.status_code == 404
    assert r.json()["title"] == "Could not retrieve the policies of a dataplane"


def test_xds_status_counts_open_streams_per_replica_and_lists_rejections(api: Api):
    _seed_dataplanes(api)
    heartbeat.beat(api.core.store, "cp-1")
    heartbeat.beat(api.core.store, "cp-2")
    try:
        got = api.get("/status/xds").json()
    finally:
        heartbeat.retire(api.core.store, "cp-1")
        heartbeat.retire(api.core.store, "cp-2")
    replicas = {r["instanceId"]: r for r in got["replicas"]}
    assert replicas["cp-1"]["streams"] == 1 and replicas["cp-1"]["alive"] is True
    assert replicas["cp-2"]["streams"] == 0
    assert got["rejections"] == [
        {
            "mesh": "default",
            "name": "web-2",
            "subscription": "b",
            "controlPlaneInstanceId": "cp-1",
            "rejected": 2,
            "rejectedByType": {"lds": 2},
            "lastUpdateTime": "2024-01-01T00:00:12Z",
        }
    ]


def test_a_mesh_insight_is_kept_while_the_store_is_unchanged(api: Api):
    _seed_dataplanes(api)
    first = api.get("/mesh-insights/default").json()
    # Asked again with nothing written: the kept answer.
    assert api.get("/mesh-insights/default").json() == first
    _put(api, "dataplanes", "web-4", dataplane_spec("web"))  # a write: recomputed
    assert api.get("/mesh-insights/default").json()["dataplanes"]["total"] == 4
