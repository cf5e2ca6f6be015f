"""Reading a PUT body (spec §4.4 steps 1-2): decode it, then check it against the URL.

Decoding problems (malformed JSON, meta fields of the wrong type, a spec of the wrong shape)
are 400s here, where Kuma answered 500 (docs/compat.md). Request-level violations are
collected into one 400 with `causes`, in Kuma's order: name, type, mesh mismatches, then the
character rules on the URL's name and mesh.
"""

from __future__ import annotations

from typing import Any

from kuma.errors import ValidationError, Violation
from kuma.manager import MAX_NAME_LENGTH
from kuma.resources.base import Resource
from kuma.resources.registry import ResourceType, decode_spec
from kuma.resources.wire import META_FIELDS, name_violations, parse_json_text


def _decode(raw: bytes, rtype: ResourceType) -> tuple[dict[str, str], Any]:
    obj = parse_json_text(raw)
    if not isinstance(obj, dict):
        raise ValidationError(details="resource must be a JSON object")
    meta: dict[str, str] = {}
    violations = []
    for key in META_FIELDS:
        value = obj.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            violations.append(Violation(key, "must be a string"))
            value = ""
        meta[key] = value
    if violations:
        raise ValidationError(violations)
    spec = decode_spec(rtype.name, {k: v for k, v in obj.items() if k not in META_FIELDS})
    return meta, spec


def _length_violations(field: str, value: str) -> list[Violation]:
    if len(value) <= MAX_NAME_LENGTH:
        return []
    return [Violation(field, f"must be at most {MAX_NAME_LENGTH} characters long")]


def _request_violations(
    meta: dict[str, str], rtype: ResourceType, mesh: str, name: str
) -> list[Violation]:
    out: list[Violation] = []
    if meta["name"] != name:
        out.append(Violation("name", "name from the URL has to be the same as in body"))
    if meta["type"] != rtype.name:
        out.append(Violation("type", "type from the URL has to be the same as in body"))
    if not rtype.is_mesh and meta["mesh"] != mesh:
        out.append(Violation("mesh", "mesh from the URL has to be the same as in body"))
    out += name_violations("name", name) + _length_violations("name", name)
    out += name_violations("mesh", mesh) + _length_violations("mesh", mesh)
    return out


def read_resource(raw: bytes, rtype: ResourceType, mesh: str, name: str) -> Resource:
    """The resource a PUT to /meshes/{mesh}/{plural}/{name} asks for (for a Mesh: mesh=name).

    Raises ValidationError: details "Resource is not valid" with causes for request-level
    violations, the decoder's details for bodies that cannot be decoded.
    """
    meta, spec = _decode(raw, rtype)
    violations = _request_violations(meta, rtype, mesh, name)
    if violations:
        raise ValidationError(violations)
    return Resource(type=rtype.name, mesh=mesh, name=name, spec=spec)
