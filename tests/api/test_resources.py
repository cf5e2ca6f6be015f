"""Spec §4.1-§4.5 over HTTP on both stores: every endpoint, status code and error body."""

from __future__ import annotations

import pytest

from kuma import version as build
from kuma.resources.registry import TYPES
from tests.api.conftest import Api
from tests.api.samples import SAMPLES, body, dataplane_spec

NAME_CHARS = (
    "invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_' "
    "symbols."
)


def test_every_exposed_type_has_a_sample():
    assert set(SAMPLES) == {t.plural for t in TYPES if t.exposed and not t.is_mesh}


def test_index(api: Api):
    r = api.get("/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"tagline": "Kuma", "version": build.version()}


def test_catalog(api: Api):
    assert api.get("/catalog").json() == {
        "apis": {
            "bootstrap": {"url": "https://localhost:5682"},
            # Kuma's admin server APIs are the API's own here (docs/compat.md).
            "dataplaneToken": {"localUrl": "http://localhost:5681", "publicUrl": ""},
            "admin": {"localUrl": "http://localhost:5681", "publicUrl": ""},
            # MADS speaks TLS as 5678 does (docs/compat.md)
            "monitoringAssignment": {"url": "grpcs://localhost:5676"},
        }
    }


def test_config_is_autoconfigured_and_masked(api: Api):
    config = api.get("/config").json()
    assert config["apiServer"]["port"] == 5681
    assert config["guiServer"]["apiServerUrl"] == "http://localhost:5681"
    assert config["bootstrapServer"]["params"]["xdsHost"] == "localhost"
    assert config["store"]["postgres"]["password"] == "*****"
    assert config["apiServer"]["adminToken"] in ("", "*****")


# --- meshes ---------------------------------------------------------------------------------


def test_mesh_lifecycle(api: Api):
    assert api.get("/meshes/m1").status_code == 404
    r = api.put("/meshes/m1", {"type": "Mesh", "name": "m1"})
    assert (r.status_code, r.content) == (201, b"")
    assert api.get("/meshes/m1").json() == {
        "type": "Mesh",
        "name": "m1",
        "mtls": {"ca": {"builtin": {}}},
    }
    mesh = {"type": "Mesh", "name": "m1", "mtls": {"enabled": True, "ca": {"builtin": {}}}}
    r = api.put("/meshes/m1", mesh)
    assert (r.status_code, r.content) == (200, b"")
    assert api.get("/meshes/m1").json()["mtls"] == {"enabled": True, "ca": {"builtin": {}}}
    listed = api.get("/meshes").json()
    assert [m["name"] for m in listed["items"]] == ["default", "m1"]
    assert listed["total"] == 2 and listed["next"] is None
    r = api.delete("/meshes/m1")
    assert (r.status_code, r.content) == (200, b"")
    assert api.get("/meshes/m1").status_code == 404


def test_mesh_get_not_found_body(api: Api):
    r = api.get("/meshes/nope")
    assert r.status_code == 404
    assert r.json() == {"title": "Could not retrieve a resource", "details": "Not found"}


def test_mesh_delete_not_found_body(api: Api):
    r = api.delete("/meshes/nope")
    assert r.status_code == 404
    assert r.json() == {"title": "Could not delete a resource", "details": "Not found"}


def test_mesh_delete_cascades(api: Api):
    api.put("/meshes/m2", {"type": "Mesh", "name": "m2"})
    api.put("/meshes/m2/dataplanes/dp", body("Dataplane", "m2", "dp", dataplane_spec()))
    assert api.get("/meshes/m2/dataplanes/dp").status_code == 200
    assert api.delete("/meshes/m2").status_code == 200
    api.put("/meshes/m2", {"type": "Mesh", "name": "m2"})
    assert api.get("/meshes/m2/dataplanes/dp").status_code == 404


def test_invalid_mesh_name_gives_name_and_mesh_violations(api: Api):
    r = api.put("/meshes/Bad.Name", {"type": "Mesh", "name": "Bad.Name"})
    assert r.status_code == 400
    assert r.json() == {
        "title": "Could not process a resource",
        "details": "Resource is not valid",
        "causes": [
            {"field": "name", "message": NAME_CHARS},
            {"field": "mesh", "message": NAME_CHARS},
        ],
    }


def test_mesh_validation_error_on_update(api: Api):
    bad = {"type": "Mesh", "name": "default", "logging": {"defaultBackend": "nope"}}
    r = api.put("/meshes/default", bad)
    assert r.status_code == 400
    assert r.json() == {
        "title": "Could not update a resource",
        "details": "Resource is not valid",
        "causes": [
            {
                "field": "logging.defaultBackend",
                "message": "has to be set to one of the logging backend in mesh",
            }
        ],
    }


# --- every type under /meshes/{mesh}/{plural} -----------------------------------------------


@pytest.mark.parametrize("plural", sorted(SAMPLES))
def test_resource_lifecycle(api: Api, plural: str):
    type_, spec, updated = SAMPLES[plural]
    path = f"/meshes/default/{plural}/r1"
    assert api.get(path).status_code == 404
    assert api.get(f"/meshes/default/{plural}").json() == {"total": 0, "items": [], "next": None}

    r = api.put(path, body(type_, "default", "r1", spec))
    assert (r.status_code, r.content) == (201, b""), r.text
    assert api.get(path).json() == body(type_, "default", "r1", spec)

    r = api.put(path, body(type_, "default", "r1", updated))
    assert (r.status_code, r.content) == (200, b""), r.text
    assert api.get(path).json() == body(type_, "default", "r1", updated)

    listed = api.get(f"/meshes/default/{plural}").json()
    assert listed == {"total": 1, "items": [body(type_, "default", "r1", updated)], "next": None}
    assert api.get(f"/meshes/other/{plural}").json()["items"] == []

    r = api.delete(path)
    assert (r.status_code, r.content) == (200, b"")
    r = api.delete(path)
    assert r.status_code == 404
    assert r.json() == {"title": "Could not delete a resource", "details": "Not found"}
    r = api.get(path)
    assert r.json() == {"title": "Could not retrieve a resource", "details": "Not found"}


def test_url_body_mismatches_are_collected(api: Api):
    r = api.put(
        "/meshes/default/traffic-routes/tr-1",
        body("TrafficLog", "other", "tr-2", SAMPLES["traffic-routes"][1]),
    )
    assert r.status_code == 400
    assert r.json() == {
        "title": "Could not process a resource",
        "details": "Resource is not valid",
        "causes": [
            {"field": "name", "message": "name from the URL has to be the same as in body"},
            {"field": "type", "message": "type from the URL has to be the same as in body"},
            {"field": "mesh", "message": "mesh from the URL has to be the same as in body"},
        ],
    }


def test_invalid_name_and_mesh_characters(api: Api):
    spec = SAMPLES["traffic-permissions"][1]
    r = api.put(
        "/meshes/invalid$/traffic-permissions/invalid@",
        body("TrafficPermission", "invalid$", "invalid@", spec),
    )
    assert r.status_code == 400
    assert r.json()["causes"] == [
        {"field": "name", "message": NAME_CHARS},
        {"field": "mesh", "message": NAME_CHARS},
    ]
    assert api.get("/meshes/invalid$/traffic-permissions/invalid@").status_code == 404


def test_mesh_missing_on_create(api: Api):
    r = api.put("/meshes/ghost/dataplanes/dp", body("Dataplane", "ghost", "dp", dataplane_spec()))
    assert r.status_code == 400
    assert r.json() == {
        "title": "Could not create a resource",
        "details": "Mesh is not found",
        "causes": [{"field": "mesh", "message": "mesh of name ghost is not found"}],
    }


def test_validation_error_on_create(api: Api):
    spec = {
        "sources": [{"match": {"service": "web"}}],
        "destinations": [{"match": {"service": "b"}}],
    }
    r = api.put(
        "/meshes/default/traffic-routes/tr-1", body("TrafficRoute", "default", "tr-1", spec)
    )
    assert r.status_code == 400
    assert r.json() == {
        "title": "Could not create a resource",
        "details": "Resource is not valid",
        "causes": [{"field": "conf", "message": "must have at least one element"}],
    }
    assert api.get("/meshes/default/traffic-routes/tr-1").status_code == 404


def test_malformed_json_is_400_not_500(api: Api):
    """Deliberate difference (docs/compat.md): Kuma answered 500."""
    r = api.put(
        "/meshes/default/dataplanes/dp", "{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    got = r.json()
    assert got["title"] == "Could not process a resource"
    assert got["details"].startswith("malformed JSON")
    assert set(got) == {"title", "details"}


def test_wrong_value_types_are_400(api: Api):
    r = api.put(
        "/meshes/default/dataplanes/dp",
        {"type": "Dataplane", "mesh": "default", "name": "dp", "networking": {"inbound": "x"}},
    )
    assert r.status_code == 400
    assert r.json() == {
        "title": "Could not process a resource",
        "details": "Resource is not valid",
        "causes": [{"field": "networking.inbound", "message": "must be an array"}],
    }
    r = api.put(
        "/meshes/default/dataplanes/dp", {"type": "Dataplane", "mesh": "default", "name": 5}
    )
    assert r.status_code == 400
    assert r.json()["causes"] == [{"field": "name", "message": "must be a string"}]
    r = api.put(
        "/meshes/default/dataplanes/dp", "[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["title"] == "Could not process a resource"


def test_unknown_fields_are_ignored(api: Api):
    spec = {**dataplane_spec(), "unknownField": {"x": 1}}
    assert (
        api.put(
            "/meshes/default/dataplanes/dp", body("Dataplane", "default", "dp", spec)
        ).status_code
        == 201
    )
    assert "unknownField" not in api.get("/meshes/default/dataplanes/dp").json()


def test_snake_case_input_is_accepted(api: Api):
    spec = {
        "networking": {
            "inbound": [{"interface": "1.1.1.1:1:2", "tags": {"service": "a"}}],
            "transparent_proxying": {"redirect_port": 15001},
        }
    }
    assert (
        api.put(
            "/meshes/default/dataplanes/dp", body("Dataplane", "default", "dp", spec)
        ).status_code
        == 201
    )
    assert api.get("/meshes/default/dataplanes/dp").json()["networking"]["transparentProxying"] == {
        "redirectPort": 15001
    }


def test_too_long_names_are_rejected(api: Api):
    name = "n" * 101
    r = api.put(f"/meshes/{name}", {"type": "Mesh", "name": name})
    assert r.status_code == 400
    assert {"field": "name", "message": "must be at most 100 characters long"} in r.json()["causes"]


def test_secrets_are_never_exposed(api: Api):
    assert api.get("/meshes/default/secrets").status_code == 404
    assert api.get("/meshes/kuma.system/secrets/admin-token").status_code == 404
    spec_paths = api.get("/openapi.json").json()["paths"]
    assert not any("secret" in p.lower() for p in spec_paths)


def test_unknown_route_and_method_have_error_bodies(api: Api):
    r = api.get("/meshes/default/unknown-things")
    assert r.status_code == 404
    assert set(r.json()) == {"title", "details"}
    r = api.put("/catalog", "{}")
    assert r.status_code == 405
    assert r.json()["title"] == "Method Not Allowed"
    assert "GET" in r.headers["Allow"]


def test_nul_in_names_is_not_found(api: Api):
    assert api.get("/meshes/a%00b").status_code == 404
    assert api.get("/meshes/a%00b/dataplanes").json()["items"] == []
    assert api.delete("/meshes/default/dataplanes/a%00b").status_code == 404
