"""The validation rules of the resource types (kuma/resources/*), written into the OpenAPI
document's schemas: the pydantic models give shapes and types; the rules that the validators
add (required tags, non-empty lists, positive thresholds, name patterns) are here, so that a
request the document allows is one the API accepts. Rules JSON Schema cannot state (a logging
backend named by `defaultBackend` must exist, names unique in a list) stay in the
descriptions."""

from __future__ import annotations

from typing import Any

from kuma.durations import RESOURCE_DURATION_PATTERN
from kuma.resources.proxytemplate import PROFILES
from services.api.openapi_dataplane import dataplane
from services.api.openapi_mesh import mesh
from services.api.put_body import MAX_NAME_LENGTH

NAME_PATTERN = f"^[0-9a-z_-]{{1,{MAX_NAME_LENGTH}}}$"
_NON_EMPTY = {"type": "string", "minLength": 1}
# a duration above zero: a non-zero digit somewhere, no minus sign
_POSITIVE_DURATION = {
    "type": "string",
    "allOf": [{"pattern": RESOURCE_DURATION_PATTERN}, {"pattern": r"^[^-]*[1-9]"}],
}
_POSITIVE = {"type": "integer", "minimum": 1, "maximum": 2**32 - 1}

# Selector rules (spec §3.14.1): `general` needs a `service` tag among non-empty ones;
# `service` is exactly one `service` tag.
GENERAL_MATCH = {
    "type": "object",
    "required": ["service"],
    "propertyNames": {"minLength": 1},
    "additionalProperties": _NON_EMPTY,
}
SERVICE_MATCH = {
    "type": "object",
    "required": ["service"],
    "properties": {"service": _NON_EMPTY},
    "additionalProperties": False,
}


def _selectors(match: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "items": {"type": "object", "required": ["match"], "properties": {"match": match}},
    }


def _policy(schema: dict[str, Any], sources: dict[str, Any]) -> None:
    schema["properties"]["sources"] = _selectors(sources)
    schema["properties"]["destinations"] = _selectors(SERVICE_MATCH)
    schema["required"] = ["sources", "destinations"]


def _health_check(schemas: dict[str, Any]) -> None:
    spec = schemas["HealthCheckSpec"]
    _policy(spec, GENERAL_MATCH)
    spec["required"].append("conf")
    spec["properties"]["conf"] = {
        "type": "object",
        "anyOf": [{"required": ["activeChecks"]}, {"required": ["passiveChecks"]}],
        "properties": {
            "activeChecks": {
                "type": "object",
                "required": ["interval", "timeout", "unhealthyThreshold", "healthyThreshold"],
                "properties": {
                    "interval": _POSITIVE_DURATION,
                    "timeout": _POSITIVE_DURATION,
                    "unhealthyThreshold": _POSITIVE,
                    "healthyThreshold": _POSITIVE,
                },
            },
            "passiveChecks": {
                "type": "object",
                "required": ["unhealthyThreshold", "penaltyInterval"],
                "properties": {
                    "unhealthyThreshold": _POSITIVE,
                    "penaltyInterval": _POSITIVE_DURATION,
                },
            },
        },
    }


def _traffic_route(schemas: dict[str, Any]) -> None:
    spec = schemas["TrafficRouteSpec"]
    _policy(spec, GENERAL_MATCH)
    spec["required"].append("conf")
    spec["properties"]["conf"]["minItems"] = 1
    schemas["WeightedDestination"]["properties"]["destination"] = GENERAL_MATCH
    schemas["WeightedDestination"]["required"] = ["destination"]


def apply(schemas: dict[str, Any]) -> None:
    """Tighten the pydantic-generated `schemas` in place with the validators' rules."""
    _policy(schemas["TrafficPermissionSpec"], SERVICE_MATCH)
    _policy(schemas["TrafficLogSpec"], GENERAL_MATCH)
    _traffic_route(schemas)
    _health_check(schemas)
    _proxy_template(schemas)
    dataplane(schemas)
    mesh(schemas)


def _proxy_template(schemas: dict[str, Any]) -> None:
    schemas["ProxyTemplateSpec"]["properties"]["selectors"] = _selectors(GENERAL_MATCH)
    schemas["ProxyTemplateSpec"]["required"] = ["selectors"]
    conf = schemas["ProxyTemplateConf"]["properties"]
    conf["imports"]["items"] = {"type": "string", "enum": list(PROFILES)}
    raw = schemas["ProxyTemplateRawResource"]
    raw["required"] = ["name", "version", "resource"]
    for field in raw["required"]:
        raw["properties"][field] = dict(_NON_EMPTY)
    raw["properties"]["resource"]["description"] = (
        "an Envoy v3 (or v2) Listener, Cluster, ClusterLoadAssignment, RouteConfiguration or "
        "Secret in YAML or JSON, with its `@type`: checked against Envoy's own message types, "
        "which no JSON schema here restates"
    )


def path_param(name: str) -> dict[str, Any]:
    """A path parameter; resource and mesh names follow the API's character rule."""
    schema: dict[str, Any] = {"type": "string"}
    if name in ("mesh", "name"):
        schema = {"type": "string", "pattern": NAME_PATTERN}
    return {"name": name, "in": "path", "required": True, "schema": schema}


# A list filters by mesh, as Kuma's does (spec §4.3): a mesh that does not exist, whatever its
# name, has no resources, and its list is empty (200), never an error.
LIST_MESH_PARAM = {
    "name": "mesh",
    "in": "path",
    "required": True,
    "description": "the mesh whose resources are listed; any other name lists nothing",
    "schema": {"type": "string"},
}
