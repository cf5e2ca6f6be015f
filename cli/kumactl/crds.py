"""Kubernetes CustomResourceDefinitions of Kuma's resource types (spec §11.5), printed by
`kumactl install control-plane` (§6.10, §11.6).

One CRD per type of the registry that has a Kubernetes plural (every type but the internal
Secret, which lives in plain Kubernetes Secrets), group `kuma.io`, version `v1alpha1`, as
`apiextensions.k8s.io/v1` with a structural openAPIV3Schema. Kuma 0.3 shipped v1beta1 CRDs whose
`spec` was a free-form object; v1beta1 is gone since Kubernetes 1.22 and v1 requires a structural
schema, so the schema is derived here from the same pydantic models the API decodes with:
camelCase property names as on the wire, tag maps as `additionalProperties: {type: string}`,
durations and timestamps as the strings protobuf-JSON writes. Unknown fields are pruned by the
API server, as protobuf-JSON decoding ignores them.

Scope follows spec §3.2/§11.5 (Kuma 0.3.1+): Mesh is cluster-scoped, every other kind is
namespaced. Objects of namespaced kinds carry `mesh` as a top-level field next to `spec`; a
Mesh has only `spec`; a DataplaneInsight keeps its data under `status` instead of `spec`
(without a status subresource, as in Kuma, so the control plane writes it in one request).

Pure: no I/O, the documents are built from the registry on each call.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from kuma.resources import registry
from kuma.resources.registry import ResourceType

Doc = dict[str, Any]

GROUP = "kuma.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORIES = ["kuma"]

# Keywords of a JSON schema that carry over unchanged to a Kubernetes one. Pydantic's `title`,
# `default`, `examples` and model docstrings are left out: Kubernetes would apply defaults to
# stored objects (Kuma omits default values), and `examples` is not a Kubernetes keyword.
_KEPT = (
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "enum",
    "required",
)
_FREE_FORM: Doc = {"x-kubernetes-preserve-unknown-fields": True}


class UnsupportedSchema(ValueError):
    """A model uses a shape that has no structural Kubernetes schema (e.g. a union of types)."""


def structural_schema(model: type[BaseModel]) -> Doc:
    """The structural openAPIV3Schema of a model's protobuf-JSON form."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(schema, schema.get("$defs", {}))


def _digits(node: Doc) -> bool:
    """A string schema that admits only decimal digits: a quoted integer."""
    return bool(re.fullmatch(r"\^[0-9\[\]{},|*()-]+\$", str(node.get("pattern", ""))))


def _convert(node: Doc, defs: dict[str, Doc]) -> Doc:
    if "$ref" in node:
        return _convert(defs[node["$ref"].removeprefix("#/$defs/")], defs)
    if "anyOf" in node:
        # `X | None`: protobuf-JSON reads null as "not set"; Kubernetes needs `nullable`.
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        numbers = [o for o in options if o.get("type") == "integer"]
        quoted = [o for o in options if o.get("type") == "string" and _digits(o)]
        if len(options) == 2 and numbers and quoted:
            # protobuf-JSON's uint32, which the API also takes quoted ("5670"): a Kubernetes
            # object holds the number. A uint64 it holds quoted, as protobuf-JSON writes it.
            options = quoted if numbers[0].get("maximum", 0) >= 2**32 else numbers
        if len(options) != 1:
            raise UnsupportedSchema(f"a union of several types has no structural schema: {node}")
        out = _convert(options[0], defs)
        if {"type": "null"} in node["anyOf"]:
            out = {"type": out["type"], "nullable": True, **out} if "type" in out else out
        return out
    for keyword in ("allOf", "oneOf", "not", "prefixItems"):
        if keyword in node:
            raise UnsupportedSchema(f"{keyword!r} has no structural schema: {node}")
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
    kind = node.get("type")
    if kind is None:
        return dict(_FREE_FORM)  # `Any`: whatever JSON value
    if not isinstance(kind, str):
        raise UnsupportedSchema(f"a field of several types has no structural schema: {node}")
    out = {"type": kind}
    out.update((k, node[k]) for k in _KEPT if k in node)
    if kind == "object":
        properties = node.get("properties") or {}
        extra = node.get("additionalProperties")
        if properties:
            out["properties"] = {name: _convert(sub, defs) for name, sub in properties.items()}
        if extra is True or extra == {}:
            # A model with extra="allow", or dict[str, Any]: free-form below this point.
            out.update(_FREE_FORM)
        elif isinstance(extra, dict):
            if properties:
                raise UnsupportedSchema(
                    f"properties together with additionalProperties are not structural: {node}"
                )
            out["additionalProperties"] = _convert(extra, defs)
    elif kind == "array":
        out["items"] = _convert(node["items"], defs) if "items" in node else dict(_FREE_FORM)
    return out


def data_field(rtype: ResourceType) -> str:
    """`spec`, or `status` for a DataplaneInsight."""
    return "status" if rtype.is_status else "spec"


def object_schema(rtype: ResourceType) -> Doc:
    """The openAPIV3Schema of a whole object of the type: apiVersion, kind, metadata, mesh, spec."""
    data = {
        "description": f"The {rtype.name} itself, in Kuma's JSON form (camelCase fields).",
        **structural_schema(rtype.spec),
    }
    properties: Doc = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
    }
    if not rtype.k8s_cluster_scoped:
        properties["mesh"] = {
            "type": "string",
            "description": "Name of the Mesh this object belongs to.",
        }
    properties[data_field(rtype)] = data
    return {
        "description": rtype.description or f"Kuma {rtype.name}.",
        "type": "object",
        "properties": properties,
    }


def _printer_columns(rtype: ResourceType) -> list[Doc]:
    columns: list[Doc] = []
    if rtype.is_mesh:
        columns.append({"name": "mTLS", "type": "boolean", "jsonPath": ".spec.mtls.enabled"})
    else:
        columns.append({"name": "Mesh", "type": "string", "jsonPath": ".mesh"})
    # Declaring columns replaces kubectl's default ones: keep AGE.
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return columns


def crd_types() -> list[ResourceType]:
    """The registry's types that have a CRD: all with a Kubernetes plural (not Secret)."""
    return [t for t in registry.TYPES if t.k8s_plural]


def definition(rtype: ResourceType, labels: dict[str, str] | None = None) -> Doc:
    """The CustomResourceDefinition of one type."""
    kind, plural = rtype.k8s_kind, rtype.k8s_plural
    if not kind or not plural:
        raise ValueError(f"{rtype.name} has no Kubernetes kind")
    names: Doc = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
    }
    if rtype.k8s_short_names:
        names["shortNames"] = list(rtype.k8s_short_names)
    names["categories"] = list(CATEGORIES)
    metadata: Doc = {"name": f"{plural}.{GROUP}"}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": "Cluster" if rtype.k8s_cluster_scoped else "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": object_schema(rtype)},
                    "additionalPrinterColumns": _printer_columns(rtype),
                }
            ],
        },
    }


def definitions(labels: dict[str, str] | None = None) -> list[Doc]:
    """Every CRD, in registry order."""
    return [definition(t, labels) for t in crd_types()]
