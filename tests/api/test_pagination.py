"""Pagination (spec §15, Kuma 0.5.0): size/offset, total, next; on both stores."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from kuma.resources.base import Resource
from kuma.resources.registry import DATAPLANE, decode_spec
from tests.api.conftest import Api
from tests.api.samples import dataplane_spec


def _add_dataplanes(api: Api, count: int, service: str = "web") -> None:
    spec = decode_spec(DATAPLANE, dataplane_spec(service))
    for i in range(count):
        api.core.store.create(Resource(DATAPLANE, "default", f"dp-{i:04d}", spec))


def test_default_page_is_100_and_next_walks_every_item(api: Api):
    _add_dataplanes(api, 250)
    first = api.get("/meshes/default/dataplanes").json()
    assert first["total"] == 250 and len(first["items"]) == 100
    seen = [dp["name"] for dp in first["items"]]
    url = first["next"]
    assert url.startswith(api.url + "/meshes/default/dataplanes?")
    while url:
        page = api.http.get(url).json()
        seen += [dp["name"] for dp in page["items"]]
        url = page["next"]
    assert seen == [f"dp-{i:04d}" for i in range(250)]


def test_size_and_offset(api: Api):
    _add_dataplanes(api, 5)
    page = api.get("/meshes/default/dataplanes?size=2&offset=2").json()
    assert [dp["name"] for dp in page["items"]] == ["dp-0002", "dp-0003"]
    assert page["total"] == 5
    assert parse_qs(urlsplit(page["next"]).query) == {"size": ["2"], "offset": ["4"]}
    last = api.get("/meshes/default/dataplanes?size=2&offset=4").json()
    assert [dp["name"] for dp in last["items"]] == ["dp-0004"] and last["next"] is None
    past = api.get("/meshes/default/dataplanes?offset=10").json()
    assert past == {"total": 5, "items": [], "next": None}
    assert len(api.get("/meshes/default/dataplanes?size=1000").json()["items"]) == 5


def test_invalid_page_size(api: Api):
    for size in ("abc", "0", "-1", "1.5"):
        r = api.get(f"/meshes/default/dataplanes?size={size}")
        assert r.status_code == 400, size
        assert r.json() == {
            "title": "Could not retrieve resources",
            "details": "Invalid page size",
            "causes": [{"field": "size", "message": "must be a positive integer"}],
        }


def test_too_big_page_size(api: Api):
    r = api.get("/meshes?size=1001")
    assert r.status_code == 400
    assert r.json() == {
        "title": "Could not retrieve resources",
        "details": "Invalid page size",
        "causes": [
            {"field": "size", "message": "Invalid page size of 1001. Maximum page size is 1000"}
        ],
    }


def test_invalid_offset(api: Api):
    for offset in ("x", "-3", str(2**63)):
        r = api.get(f"/meshes/default/dataplanes?offset={offset}")
        assert r.status_code == 400
        assert r.json() == {"title": "Could not retrieve resources", "details": "Invalid offset"}


def test_overviews_paginate_and_next_keeps_the_tag_filter(api: Api):
    _add_dataplanes(api, 3, service="web")
    spec = decode_spec(DATAPLANE, dataplane_spec("db"))
    api.core.store.create(Resource(DATAPLANE, "default", "db-1", spec))
    page = api.get("/meshes/default/dataplanes+insights?tag=service:web&size=2").json()
    assert page["total"] == 3
    assert [o["name"] for o in page["items"]] == ["dp-0000", "dp-0001"]
    query = parse_qs(urlsplit(page["next"]).query)
    assert query == {"tag": ["service:web"], "size": ["2"], "offset": ["2"]}
    rest = api.http.get(page["next"]).json()
    assert [o["name"] for o in rest["items"]] == ["dp-0002"] and rest["next"] is None
    everything = api.get("/meshes/default/dataplanes+insights?size=3").json()
    assert everything["total"] == 4 and len(everything["items"]) == 3
