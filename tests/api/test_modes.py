"""Read-only mode (spec §4.6), CORS (spec §4), the admin token for writes, 409 on a concurrent
update (docs/compat.md), and writes publishing on the change feed."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from kuma.admin_token import TOKEN_MESH, TOKEN_NAME, ensure_admin_token, stored_token
from kuma.events import RESYNC, Change, InProcessFeed
from kuma.manager import ResourceManager
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, SECRET
from kuma.store import MemoryStore
from kuma.wiring import Core
from tests.api.conftest import Api, Serve
from tests.api.samples import body, dataplane_spec

DP = body("Dataplane", "default", "dp", dataplane_spec())


# --- read-only ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_only_api(serve_session: Serve) -> Api:
    return serve_session({"KUMA_API_SERVER_READ_ONLY": "true"})


def test_read_only_answers_405_to_writes(read_only_api: Api):
    for method, path in [
        ("PUT", "/meshes/default"),
        ("DELETE", "/meshes/default"),
        ("PUT", "/meshes/default/dataplanes/dp"),
        ("DELETE", "/meshes/default/traffic-routes/x"),
    ]:
        r = read_only_api.http.request(method, read_only_api.url + path, json=DP)
        assert r.status_code == 405, (method, path)
        assert r.json()["title"] == "Method Not Allowed"
        assert r.headers["Allow"].split(", ")[0] in ("GET", "HEAD", "OPTIONS")
    assert read_only_api.get("/meshes/default").status_code == 200
    assert read_only_api.get("/meshes/default/dataplanes").status_code == 200
    paths = read_only_api.get("/openapi.json").json()["paths"]
    assert "put" not in paths["/meshes/{name}"] and "delete" not in paths["/meshes/{name}"]


# --- CORS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cors_api(serve_session: Serve) -> Api:
    env = {
        "KUMA_API_SERVER_CORS_ALLOWED_DOMAINS": r"https://gui\.example\.com,http://localhost:\d+"
    }
    return serve_session(env)


def test_cors_default_allows_only_the_gui_on_this_host(memory_only_api: Api):
    for gui in ("http://localhost:5683", "http://127.0.0.1:5683", "http://[::1]:5683"):
        r = memory_only_api.get("/meshes", headers={"Origin": gui})
        assert r.headers["Access-Control-Allow-Origin"] == gui
    r = memory_only_api.get("/meshes", headers={"Origin": "http://anything.test"})
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Origin" not in memory_only_api.get("/meshes").headers


def test_cors_matches_configured_regexps(cors_api: Api):
    ok = cors_api.get("/meshes", headers={"Origin": "http://localhost:8080"})
    assert ok.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    err = cors_api.get("/meshes/nope", headers={"Origin": "https://gui.example.com"})
    assert err.status_code == 404
    assert err.headers["Access-Control-Allow-Origin"] == "https://gui.example.com"
    for origin in ("https://evil.test", "https://gui.example.com.evil.test"):
        r = cors_api.get("/meshes", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_preflight(cors_api: Api):
    r = cors_api.options(
        "/meshes/default/dataplanes/dp",
        headers={
            "Origin": "https://gui.example.com",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://gui.example.com"
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) == {
        "GET",
        "PUT",
        "DELETE",
        "OPTIONS",
    }
    assert r.headers["Access-Control-Allow-Headers"] == "content-type,authorization"
    denied = cors_api.options(
        "/meshes", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "PUT"}
    )
    assert "Access-Control-Allow-Origin" not in denied.headers


# --- admin token ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_api(serve_session: Serve) -> Api:
    """Loopback is not trusted here, so requests from the tests need the token like remote ones."""
    return serve_session(trust_loopback=False)


def test_writes_without_token_are_401_and_change_nothing(guarded_api: Api):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        r = guarded_api.put("/meshes/default/dataplanes/dp", DP, headers=headers)
        assert r.status_code == 401
        assert r.json()["title"] == "Unauthorized"
        assert set(r.json()) == {"title", "details"}
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert guarded_api.delete("/meshes/default", headers=headers).status_code == 401
    assert guarded_api.get("/meshes/default/dataplanes/dp").status_code == 404
    assert guarded_api.get("/meshes/default").status_code == 200


def test_writes_with_the_stored_token_succeed(guarded_api: Api):
    token = stored_token(guarded_api.core.store)
    assert token
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        guarded_api.put(
            "/meshes/default/dataplanes/dp2", {**DP, "name": "dp2"}, headers=auth
        ).status_code
        == 201
    )
    assert guarded_api.delete("/meshes/default/dataplanes/dp2", headers=auth).status_code == 200


def test_reads_need_no_token(guarded_api: Api):
    assert guarded_api.get("/meshes").status_code == 200
    assert guarded_api.get("/config").status_code == 200


def test_loopback_writes_need_no_token(memory_only_api: Api):
    assert memory_only_api.put("/meshes/default/dataplanes/dp", DP).status_code == 201


def test_token_survives_deleting_mesh_default(api: Api):
    token = ensure_admin_token(api.cfg, api.core.store)
    assert api.delete("/meshes/default").status_code == 200
    assert stored_token(api.core.store) == token
    found = api.core.store.get(SECRET, TOKEN_MESH, TOKEN_NAME)
    assert bytes(found.spec.data).decode() == token


def test_configured_token_wins(serve_session: Serve):
    served = serve_session({"KUMA_API_SERVER_ADMIN_TOKEN": "s3cret"}, trust_loopback=False)
    assert (
        served.put(
            "/meshes/m9", {"type": "Mesh", "name": "m9"}, headers={"Authorization": "Bearer s3cret"}
        ).status_code
        == 201
    )
    stored = stored_token(served.core.store)
    assert stored != "s3cret"
    assert served.get("/config").json()["apiServer"]["adminToken"] == "*****"


def test_token_generation_race_yields_one_token():
    store = MemoryStore()
    from kuma.config import load_config

    cfg = load_config(env={})
    tokens: list[str] = []
    threads = [
        threading.Thread(target=lambda: tokens.append(ensure_admin_token(cfg, store)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1 and stored_token(store) == tokens[0]


# --- concurrent update: 409 -----------------------------------------------------------------


class RacingStore(MemoryStore):
    """Another writer updates the record between the API's read and its write."""

    def update(self, resource: Resource) -> Resource:
        current = self.get(resource.type, resource.mesh, resource.name)
        super().update(replace(current))
        return super().update(resource)


def test_concurrent_update_is_409(serve_session: Serve):
    store = RacingStore()
    feed_core = Core(store=store, feed=InProcessFeed(), manager=ResourceManager(store))
    served = serve_session(core=feed_core)
    r = served.put("/meshes/default", {"type": "Mesh", "name": "default"})
    assert r.status_code == 409
    assert r.json() == {"title": "Could not update a resource", "details": "Resource conflict"}


# --- change feed ----------------------------------------------------------------------------


def test_every_write_publishes_a_change(api: Api):
    seen: list[Change] = []
    sub = api.core.feed.subscribe(seen.append)
    try:
        api.put("/meshes/m5", {"type": "Mesh", "name": "m5"})
        api.put("/meshes/m5", {"type": "Mesh", "name": "m5", "mtls": {"enabled": True}})
        api.put("/meshes/m5/dataplanes/dp", {**DP, "mesh": "m5"})
        api.delete("/meshes/m5/dataplanes/dp")
        api.delete("/meshes/m5")
        api.put("/meshes/m5/dataplanes/dp", {**DP, "mesh": "m5"})  # fails: nothing published
    finally:
        sub.close()
    ops = [(c.op, c.type, c.mesh, c.name) for c in seen if c.op != RESYNC]
    assert ops == [
        ("create", "Secret", "m5", "builtinca.m5"),  # the Mesh's builtin CA, stored first
        ("create", MESH, "m5", "m5"),
        ("update", MESH, "m5", "m5"),
        ("create", "Dataplane", "m5", "dp"),
        ("delete", "Dataplane", "m5", "dp"),
        ("delete", MESH, "m5", "m5"),
    ]
