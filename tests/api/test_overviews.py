"""Dataplane overviews (spec §4.7) on both stores."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.samples import body, dataplane_spec

INSIGHT = {
    "subscriptions": [
        {
            "id": "stream-id-1",
            "controlPlaneInstanceId": "cp-1",
            "connectTime": "2019-07-01T00:00:00Z",
            "status": {"total": {"responsesSent": "10"}},
        }
    ]
}


def _seed(api: Api) -> None:
    for name, service, version in [("dp1", "web", "v1"), ("dp2", "web", "v2"), ("dp3", "db", "v1")]:
        spec = dataplane_spec(service, version)
        assert (
            api.put(
                f"/meshes/default/dataplanes/{name}", body("Dataplane", "default", name, spec)
            ).status_code
            == 201
        )
    r = api.put(
        "/meshes/default/dataplane-insights/dp1",
        body("DataplaneInsight", "default", "dp1", INSIGHT),
    )
    assert r.status_code == 201


def test_one_overview_with_and_without_insight(api: Api):
    _seed(api)
    assert api.get("/meshes/default/dataplanes+insights/dp1").json() == {
        "type": "DataplaneOverview",
        "mesh": "default",
        "name": "dp1",
        "dataplane": dataplane_spec("web", "v1"),
        "dataplaneInsight": INSIGHT,
    }
    without = api.get("/meshes/default/dataplanes+insights/dp2").json()
    assert without["dataplaneInsight"] == {}


def test_missing_overview(api: Api):
    r = api.get("/meshes/default/dataplanes+insights/nope")
    assert r.status_code == 404
    assert r.json() == {"title": "Could not retrieve a dataplane overview", "details": "Not found"}


def test_list_joins_insights_and_filters_by_tags(api: Api):
    _seed(api)
    listed = api.get("/meshes/default/dataplanes+insights").json()
    assert [o["name"] for o in listed["items"]] == ["dp1", "dp2", "dp3"]
    assert listed["items"][0]["dataplaneInsight"] == INSIGHT
    assert "dataplaneInsight" not in listed["items"][1]

    def names(query: str) -> list[str]:
        return [
            o["name"]
            for o in api.get(f"/meshes/default/dataplanes+insights?{query}").json()["items"]
        ]

    assert names("tag=service:web") == ["dp1", "dp2"]
    assert names("tag=service:web&tag=version:v2") == ["dp2"]
    assert names("tag=version:*") == ["dp1", "dp2", "dp3"]
    assert names("tag=service:nope") == []
    assert names("tag=service:web:extra&tag=broken") == ["dp1", "dp2", "dp3"]  # ignored
    assert api.get("/meshes/ghost/dataplanes+insights").json() == {
        "total": 0,
        "items": [],
        "next": None,
    }
