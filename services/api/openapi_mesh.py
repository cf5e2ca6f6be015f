"""The Mesh validator's rules (kuma/resources/mesh.py) as JSON schema: one kind of CA, logging
backends with a name and a usable file path or TCP address. Names unique among the backends and
`defaultBackend` naming one of them are said in words: JSON schema cannot compare one value with
another; nor can it know whether a provided CA has its signing certificate yet."""

from __future__ import annotations

from typing import Any

_NON_EMPTY = {"type": "string", "minLength": 1}
_OBJECT = {"type": "object"}
# Go's net.SplitHostPort with a host and a port (kuma/netutil.py split_host_port): a host
# without colons or brackets, or any host in brackets; the port after the last colon.
HOST_PORT_PATTERN = r"^([^:\[\]]+|\[[^\[\]]+\]):[^:\[\]]+$"


def one_of(*members: str) -> dict[str, Any]:
    """protobuf's `oneof`: no two of `members` set (null counts as not set)."""
    pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
    return {
        "not": {
            "anyOf": [
                {"required": [a, b], "properties": {a: _OBJECT, b: _OBJECT}} for a, b in pairs
            ]
        }
    }


def mesh(schemas: dict[str, Any]) -> None:
    """Tighten the Mesh's pydantic-generated schemas in place."""
    schemas["Mtls"]["description"] = (
        "no `ca` is the builtin CA; a provided CA needs its signing certificate uploaded "
        "first; with mTLS on, the kind of CA cannot change"
    )
    schemas["CertificateAuthority"].update(one_of("builtin", "provided"))
    backend = schemas["LoggingBackend"]
    backend.update(one_of("file", "tcp"))
    backend["required"] = ["name"]
    backend["properties"]["name"] = {**_NON_EMPTY, "description": "unique among the backends"}
    schemas["FileBackend"]["required"] = ["path"]
    schemas["FileBackend"]["properties"]["path"] = _NON_EMPTY
    schemas["TcpBackend"]["required"] = ["address"]
    schemas["TcpBackend"]["properties"]["address"] = {
        "type": "string",
        "pattern": HOST_PORT_PATTERN,
        "description": "HOST:PORT, an IPv6 host in brackets",
    }
    schemas["Logging"]["properties"]["defaultBackend"]["description"] = (
        "the name of one of `backends`"
    )
