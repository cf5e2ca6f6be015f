"""A resource as the API, kumactl and files carry it: one flat JSON object, meta fields (`type`,
`mesh`, `name`; no `mesh` for a Mesh) merged with the spec's top-level fields (spec §4.2)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from kuma.decode import load_json, load_yaml_documents
from kuma.errors import ValidationError, Violation
from kuma.resources.base import Resource
from kuma.resources.registry import decode_spec, encode_spec, get_type

META_FIELDS = ("type", "mesh", "name")
_NAME_CHARS = re.compile(r"^[0-9a-z\-_]*$")
NAME_CHARS_MESSAGE = (
    "invalid characters. Valid characters are numbers, lowercase latin letters "
    "and '-', '_' symbols."
)


def name_violations(field_name: str, value: str) -> list[Violation]:
    """The API's character rule for names and meshes (spec §3.1)."""
    return [] if _NAME_CHARS.match(value) else [Violation(field_name, NAME_CHARS_MESSAGE)]


def to_json(resource: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {"type": resource.type}
    if not get_type(resource.type).is_mesh:
        out["mesh"] = resource.mesh
    out["name"] = resource.name
    out.update(encode_spec(resource.spec))
    return out


def from_json(obj: Any, default_mesh: str = "") -> Resource:
    """Decode one resource object; ValidationError for anything that is not a valid shape.

    Only the shape is checked here; the type's rules run in `registry.validate_spec`.
    """
    if not isinstance(obj, dict):
        raise ValidationError(details="resource must be a JSON/YAML object")
    meta: dict[str, str] = {}
    violations = []
    for key in META_FIELDS:
        value = obj.get(key, "")
        if not isinstance(value, str):
            violations.append(Violation(key, "must be a string"))
        meta[key] = value if isinstance(value, str) else ""
    if violations:
        raise ValidationError(violations)
    if not meta["type"]:
        raise ValidationError([Violation("type", "cannot be empty")])
    rtype = get_type(meta["type"])
    spec_data = {k: v for k, v in obj.items() if k not in META_FIELDS}
    spec = decode_spec(rtype.name, spec_data)
    mesh = meta["name"] if rtype.is_mesh else (meta["mesh"] or default_mesh)
    return Resource(type=rtype.name, mesh=mesh, name=meta["name"], spec=spec)


def parse_json_text(text: str | bytes) -> Any:
    try:
        return load_json(text)
    except ValueError as exc:
        raise ValidationError(details=f"malformed JSON: {exc}") from None


def parse_yaml_documents(text: str) -> list[Any]:
    """Every non-empty document of a (multi-document) YAML text; JSON is YAML too."""
    try:
        return [doc for doc in load_yaml_documents(text) if doc is not None]
    except (yaml.YAMLError, ValueError) as exc:
        raise ValidationError(details="malformed YAML: " + " ".join(str(exc).split())) from None
