"""The OpenAPI 3 document of the API (`GET /openapi.json`), generated from the same registry the
routes are: resource schemas come from the pydantic spec models plus the meta fields."""

from __future__ import annotations

import copy
from typing import Any

from pydantic.json_schema import models_json_schema

from kuma import version as build
from kuma.resources.registry import TYPES, ResourceType
from services.api import openapi_constraints
from services.api.openapi_constraints import path_param as _path_param
from services.api.overview_routes import OVERVIEW
from services.api.pagination import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE

REF = "#/components/schemas/{model}"
_COUNT = {"type": "integer", "minimum": 0}
JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "Bad request: invalid input (see `causes`)",
        401: "Missing or wrong admin token",
        403: "A CA private key sent in plaintext from another host",
        404: "Not found",
        405: "Method not allowed (read-only mode)",
        409: "Conflict: changed or created concurrently",
        412: "Precondition failed",
        415: "The body is not sent as `Content-Type: application/json`",
        500: "Internal server error",
        503: "Store unavailable",
    }
    return {str(c): _json(_ref("Error"), texts[c]) for c in codes}


_PAGE_PARAMS = [
    {
        "name": "size",
        "in": "query",
        "required": False,
        "description": f"page size, default {DEFAULT_PAGE_SIZE}",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
    },
    {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "where the page starts: the `next` URL of the previous page carries it",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
    },
]


def _list_schema(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["total", "items", "next"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "items": {"type": "array", "items": _ref(item)},
            "next": {"type": ["string", "null"], "description": "absolute URL of the next page"},
        },
    }


def _resource_schema(rtype: ResourceType, spec_schema: dict[str, Any]) -> dict[str, Any]:
    """The spec's schema with the meta fields of spec §4.2 merged in."""
    schema = copy.deepcopy(spec_schema)
    schema["title"] = rtype.name
    meta: dict[str, Any] = {"type": {"type": "string", "enum": [rtype.name]}}
    required = ["type", "name"]
    url = "in a PUT, the same as in the URL"
    named = {"type": "string", "pattern": openapi_constraints.NAME_PATTERN, "description": url}
    if not rtype.is_mesh:
        meta["mesh"] = named
        required.insert(1, "mesh")
    meta["name"] = named
    schema["properties"] = {**meta, **schema.get("properties", {})}
    schema["required"] = required + schema.get("required", [])
    return schema


def _operations(rtype: ResourceType, read_only: bool) -> dict[str, dict[str, Any]]:
    if rtype.is_mesh:
        collection, item, params = "/meshes", "/meshes/{name}", ["name"]
        list_params: list[dict[str, Any]] = []
    else:
        collection = f"/meshes/{{mesh}}/{rtype.plural}"
        item, params = f"{collection}/{{name}}", ["mesh", "name"]
        list_params = [openapi_constraints.LIST_MESH_PARAM]
    item_params = [_path_param(p) for p in params]
    name = rtype.name
    paths: dict[str, dict[str, Any]] = {
        collection: {
            "get": {
                "operationId": f"list{name}",
                "summary": f"List {name} resources",
                "parameters": list_params + _PAGE_PARAMS,
                "responses": {
                    "200": _json(_ref(f"{name}List"), f"A page of {name} resources"),
                    **_errors(400, 404, 500, 503),
                },
            }
        },
        item: {
            "get": {
                "operationId": f"get{name}",
                "summary": f"Get a {name}",
                "parameters": item_params,
                "responses": {
                    "200": _json(_ref(name), f"The {name}"),
                    **_errors(404, 500, 503),
                },
            }
        },
    }
    write_errors = (400, 401, 404, 405, 409, 412, 415, 500, 503)
    if not read_only:
        paths[item]["put"] = {
            "operationId": f"put{name}",
            "summary": f"Create or update a {name}",
            "parameters": item_params,
            "security": [{"adminToken": []}, {}],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(name)}}},
            "responses": {
                "200": {"description": "Updated (empty body)"},
                "201": {"description": "Created (empty body)"},
                **_errors(*write_errors),
            },
        }
        paths[item]["delete"] = {
            "operationId": f"delete{name}",
            "summary": f"Delete a {name}" + (" and everything in it" if rtype.is_mesh else ""),
            "parameters": item_params,
            "security": [{"adminToken": []}, {}],
            "responses": {
                "200": {"description": "Deleted (empty body)"},
                **_errors(*write_errors),
            },
        }
    return paths


def _info_paths() -> dict[str, Any]:
    def simple(op_id: str, summary: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "responses": {"200": _json(schema, summary)},
            }
        }

    return {
        "/": simple("index", "Tagline and version", _ref("Index")),
        "/catalog": simple("catalog", "API catalog", {"type": "object"}),
        "/config": simple(
            "config", "Effective configuration (passwords masked)", {"type": "object"}
        ),
        "/openapi.json": simple("openapi", "This document", {"type": "object"}),
    }


def _overview_paths() -> dict[str, Any]:
    collection = "/meshes/{mesh}/dataplanes+insights"
    tag = {
        "name": "tag",
        "in": "query",
        "required": False,
        "description": "`key:value`; repeatable; all must match (`*` = any value)",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    }
    return {
        collection: {
            "get": {
                "operationId": "listDataplaneOverview",
                "summary": "List Dataplanes with their insights",
                "parameters": [openapi_constraints.LIST_MESH_PARAM, tag, *_PAGE_PARAMS],
                "responses": {
                    "200": _json(_ref(f"{OVERVIEW}List"), "A page of overviews"),
                    **_errors(400, 404, 500, 503),
                },
            }
        },
        f"{collection}/{{name}}": {
            "get": {
                "operationId": "getDataplaneOverview",
                "summary": "Get a Dataplane with its insight",
                "parameters": [_path_param("mesh"), _path_param("name")],
                "responses": {
                    "200": _json(_ref(OVERVIEW), "The overview"),
                    **_errors(404, 500, 503),
                },
            }
        },
    }


def _insight_paths() -> dict[str, Any]:
    """services/api/insight_routes.py: aggregates for the GUI and kumactl."""

    def get(op_id: str, summary: str, params: list[Any], ok: dict[str, Any], *codes: int) -> Any:
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "parameters": params,
                "responses": {"200": _json(ok, summary), **_errors(*codes, 500, 503)},
            }
        }

    mesh, name = _path_param("mesh"), _path_param("name")
    return {
        "/mesh-insights": get(
            "listMeshInsight",
            "Per mesh: dataplanes total/online/offline and policies per kind",
            _PAGE_PARAMS,
            _ref("MeshInsightList"),
            400,
        ),
        "/mesh-insights/{mesh}": get(
            "getMeshInsight",
            "A mesh's dataplanes total/online/offline and policies per kind",
            [mesh],
            _ref("MeshInsight"),
            404,
        ),
        "/meshes/{mesh}/dataplanes/{name}/policies": get(
            "getDataplanePolicies",
            "The policies that select a dataplane, by where they apply",
            [mesh, name],
            _ref("DataplanePolicies"),
            404,
        ),
        "/status/xds": get(
            "getXdsStatus",
            "The xDS replicas with their open streams, and recent rejected updates",
            [],
            _ref("XdsStatus"),
        ),
    }


def _provided_ca_paths() -> dict[str, Any]:
    """Spec §5.2 (Kuma's admin server), served by the API: services/api/provided_ca_routes.py."""
    base = "/meshes/{mesh}/ca/provided"
    admin: dict[str, Any] = {"security": [{"adminToken": []}, {}]}
    return {
        f"{base}/certificates": {
            "post": {
                "operationId": "addSigningCertificate",
                "summary": "Upload the signing certificate and key of a mesh's provided CA "
                "(only over TLS or from the control plane's host)",
                "parameters": [_path_param("mesh")],
                **admin,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("SigningKeyCert")}},
                },
                "responses": {
                    "200": _json(_ref("SigningCert"), "The stored certificate and its id"),
                    **_errors(400, 401, 403, 409, 415, 500, 503),
                },
            },
            "get": {
                "operationId": "listSigningCertificates",
                "summary": "The signing certificates of a mesh's provided CA (no keys)",
                "parameters": [_path_param("mesh")],
                "responses": {
                    "200": _json(
                        {"type": "array", "items": _ref("SigningCert")}, "Signing certificates"
                    ),
                    **_errors(404, 500, 503),
                },
            },
        },
        f"{base}/certificates/{{id}}": {
            "delete": {
                "operationId": "deleteSigningCertificate",
                "summary": "Delete a signing certificate (not while its mesh uses it)",
                "parameters": [_path_param("mesh"), _path_param("id")],
                **admin,
                "responses": {
                    "200": {"description": "Deleted (empty body)"},
                    **_errors(400, 401, 404, 409, 500, 503),
                },
            }
        },
        base: {
            "delete": {
                "operationId": "deleteProvidedCa",
                "summary": "Delete a mesh's provided CA (not while its mesh uses it)",
                "parameters": [_path_param("mesh")],
                **admin,
                "responses": {
                    "200": {"description": "Deleted (empty body)"},
                    **_errors(400, 401, 404, 500, 503),
                },
            }
        },
    }


def _fixed_schemas() -> dict[str, Any]:
    return {
        "Error": {
            "type": "object",
            "required": ["title", "details"],
            "properties": {
                "title": {"type": "string"},
                "details": {"type": "string"},
                "causes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
        "Index": {
            "type": "object",
            "required": ["tagline", "version"],
            "properties": {"tagline": {"type": "string"}, "version": {"type": "string"}},
        },
        OVERVIEW: {
            "type": "object",
            "required": ["type", "mesh", "name", "dataplane"],
            "properties": {
                "type": {"type": "string", "enum": [OVERVIEW]},
                "mesh": {"type": "string"},
                "name": {"type": "string"},
                "dataplane": _ref("DataplaneSpec"),
                "dataplaneInsight": _ref("DataplaneInsightSpec"),
            },
        },
        f"{OVERVIEW}List": _list_schema(OVERVIEW),
        "MeshInsight": {
            "type": "object",
            "required": ["type", "name", "dataplanes", "policies"],
            "properties": {
                "type": {"type": "string", "enum": ["MeshInsight"]},
                "name": {"type": "string"},
                "dataplanes": {
                    "type": "object",
                    "required": ["total", "online", "offline"],
                    "properties": {k: _COUNT for k in ("total", "online", "offline")},
                },
                "policies": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["total"],
                        "properties": {"total": _COUNT},
                    },
                },
            },
        },
        "MeshInsightList": _list_schema("MeshInsight"),
        "DataplanePolicies": {
            "type": "object",
            "required": ["total", "items"],
            "properties": {
                "total": _COUNT,
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "name", "service", "matchedPolicies"],
                        "properties": {
                            "type": {
                                "type": "string",
                                "enum": ["dataplane", "inbound", "outbound", "service"],
                            },
                            "name": {"type": "string"},
                            "service": {"type": "string"},
                            "matchedPolicies": {
                                "type": "object",
                                "additionalProperties": {"type": "array"},
                            },
                        },
                    },
                },
            },
        },
        "XdsStatus": {
            "type": "object",
            "required": ["replicas", "rejections"],
            "properties": {
                "replicas": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["instanceId", "lastBeat", "alive", "streams"],
                        "properties": {
                            "instanceId": {"type": "string"},
                            "lastBeat": {"type": ["string", "null"]},
                            "alive": {"type": "boolean"},
                            "streams": _COUNT,
                        },
                    },
                },
                "rejections": {"type": "array", "items": {"type": "object"}},
            },
        },
        "SigningKeyCert": {
            "type": "object",
            "required": ["cert", "key"],
            "properties": {
                "cert": {"type": "string", "description": "PEM certificate"},
                "key": {"type": "string", "description": "PEM private key"},
            },
        },
        "SigningCert": {
            "type": "object",
            "required": ["id", "cert"],
            "properties": {"id": {"type": "string"}, "cert": {"type": "string"}},
        },
    }


def build_openapi(*, read_only: bool = False) -> dict[str, Any]:
    exposed = [t for t in TYPES if t.exposed]
    _, defs = models_json_schema([(t.spec, "validation") for t in exposed], ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    openapi_constraints.apply(schemas)  # before the resource schemas copy the specs'
    paths: dict[str, Any] = {**_info_paths()}
    for rtype in exposed:
        spec_name = rtype.spec.__name__
        schemas[rtype.name] = _resource_schema(rtype, schemas[spec_name])
        schemas[f"{rtype.name}List"] = _list_schema(rtype.name)
        paths.update(_operations(rtype, read_only))
    paths.update(_overview_paths())
    paths.update(_insight_paths())
    paths.update(_provided_ca_paths())
    schemas.update(_fixed_schemas())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kuma API",
            "version": build.version(),
            "description": "Kuma control plane HTTP API (spec §4). Reads are open; PUT and "
            "DELETE (and POST) need `Authorization: Bearer <admin token>` unless sent from the "
            "same host.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }
