"""ProxyTemplate (spec §3.10): profiles to import plus raw Envoy resources.

Raw resources are checked here against the real Envoy v3 protobuf types (xds-protos), so a typo
in a field name is a 400 at apply time rather than a NACK later. Kuma 0.3 took Envoy v2 type
URLs; Envoy 1.40 speaks only v3, so the v2 names of the five resource types, and v2 names nested
inside them, are read as their v3 successors (kuma.resources.envoy_types; field names of these
messages did not change for the common cases).
"""

from __future__ import annotations

import contextlib
import importlib
import json
from functools import cache
from typing import Any

import yaml

from kuma.decode import load_yaml
from kuma.errors import Violation
from kuma.resources import envoy_types, paths
from kuma.resources.base import Spec
from kuma.resources.selectors import Selector, validate_selectors

DEFAULT_PROFILE = "default-proxy"
PROFILES = (DEFAULT_PROFILE,)

# The resource types a template may hold (v3 names) -> the module holding each.
_ENVOY_TYPES = {
    "envoy.config.listener.v3.Listener": "envoy.config.listener.v3.listener_pb2",
    "envoy.config.cluster.v3.Cluster": "envoy.config.cluster.v3.cluster_pb2",
    "envoy.config.endpoint.v3.ClusterLoadAssignment": "envoy.config.endpoint.v3.endpoint_pb2",
    "envoy.config.route.v3.RouteConfiguration": "envoy.config.route.v3.route_pb2",
    "envoy.extensions.transport_sockets.tls.v3.Secret": (
        "envoy.extensions.transport_sockets.tls.v3.secret_pb2"
    ),
}
# The one required-field rule users hit in practice (spec's example message).
_NAME_FIELD = {
    "envoy.config.listener.v3.Listener": None,
    "envoy.config.cluster.v3.Cluster": "name",
    "envoy.config.endpoint.v3.ClusterLoadAssignment": "cluster_name",
    "envoy.config.route.v3.RouteConfiguration": None,
    "envoy.extensions.transport_sockets.tls.v3.Secret": None,
}


class ProxyTemplateRawResource(Spec):
    name: str = ""
    version: str = ""
    resource: str = ""


class ProxyTemplateConf(Spec):
    imports: list[str] = []
    resources: list[ProxyTemplateRawResource] = []


class ProxyTemplateSpec(Spec):
    selectors: list[Selector] = []
    conf: ProxyTemplateConf | None = None


@cache
def _message_class(full_name: str) -> Any:
    from google.protobuf import symbol_database

    importlib.import_module(_ENVOY_TYPES[full_name])
    return symbol_database.Default().GetSymbol(full_name)


def parse_envoy_resource(text: str) -> Any:
    """Parse YAML/JSON text of an Envoy resource with `@type` into its v3 protobuf message.

    Raises ValueError with a readable reason when it is not a valid resource.
    """
    from google.protobuf import json_format

    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ValueError("expected a YAML or JSON object")
    type_url = str(data.pop("@type", ""))
    if not type_url.startswith(envoy_types.TYPE_PREFIX):
        raise ValueError('"@type" must be a type URL like type.googleapis.com/<message>')
    full_name = type_url[len(envoy_types.TYPE_PREFIX) :]
    with contextlib.suppress(ValueError):  # a v2 type without a successor is unsupported
        full_name = envoy_types.v3_name(full_name)
    if full_name not in _ENVOY_TYPES:
        raise ValueError(
            f"unsupported resource type {type_url}; expected one of: "
            + ", ".join(sorted(_ENVOY_TYPES))
        )
    message_class = _message_class(full_name)
    envoy_types.upgrade_nested_types(data)
    try:
        # Round-trip through JSON so YAML's non-JSON scalars (dates) fail the same way.
        message = json_format.Parse(json.dumps(data, default=str), message_class())
    except json_format.ParseError as exc:
        raise ValueError(envoy_types.v3_hint(str(exc))) from None
    name_field = _NAME_FIELD[full_name] or "name"
    if hasattr(message, name_field) and not getattr(message, name_field):
        short = full_name.rsplit(".", 1)[1]
        pascal = "".join(p.capitalize() for p in name_field.split("_"))
        raise ValueError(f"invalid {short}.{pascal}: value length must be at least 1 bytes")
    envoy_types.finish(message)
    return message


def validate(spec: ProxyTemplateSpec) -> list[Violation]:
    out = validate_selectors(spec.selectors, "selectors", "general", required=False)
    conf = spec.conf or ProxyTemplateConf()
    for i, name in enumerate(conf.imports):
        path = paths.index("conf.imports", i)
        if not name:
            out.append(Violation(path, "cannot be empty"))
        elif name not in PROFILES:
            out.append(
                Violation(path, "profile not found. Available profiles: " + ", ".join(PROFILES))
            )
    for i, raw in enumerate(conf.resources):
        path = paths.index("conf.resources", i)
        for attr in ("name", "version", "resource"):
            if not getattr(raw, attr):
                out.append(Violation(paths.field(path, attr), "cannot be empty"))
        if raw.resource:
            try:
                parse_envoy_resource(raw.resource)
            except ValueError as exc:
                out.append(
                    Violation(
                        paths.field(path, "resource"),
                        f"native Envoy resource is not valid: {exc}",
                    )
                )
    return out
