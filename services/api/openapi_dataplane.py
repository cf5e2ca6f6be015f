"""The Dataplane validator's rules (kuma/resources/dataplane.py) as JSON schema: inbound or
gateway, exactly one of them; interfaces in their exact formats; tags with a `service`."""

from __future__ import annotations

from typing import Any

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
# 1-65535 in one to five digits, leading zeros allowed (the parser reads `\d{1,5}` as a number)
_PORT = (
    r"(0{0,4}[1-9]|0{0,3}[1-9][0-9]|0{0,2}[1-9][0-9]{2}|0?[1-9][0-9]{3}"
    r"|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
INBOUND_PATTERN = rf"^{_IPV4}:{_PORT}:{_PORT}$"
OUTBOUND_PATTERN = rf"^({_IPV4})?:{_PORT}$"

TAGS = {
    "type": "object",
    "required": ["service"],
    "additionalProperties": {"type": "string", "minLength": 1},
    "description": "a `service` tag is mandatory; no value is empty",
}


def _interface(pattern: str, description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern, "description": description}


def dataplane(schemas: dict[str, Any]) -> None:
    """Tighten the Dataplane's pydantic-generated schemas in place."""
    spec = schemas["DataplaneSpec"]
    spec["required"] = ["networking"]
    networking = schemas["Networking"]
    networking["description"] = "an inbound interface or more, or a gateway: one, not both"
    networking["anyOf"] = [
        {
            "required": ["inbound"],
            "properties": {"inbound": {"minItems": 1}, "gateway": {"type": "null"}},
        },
        {
            "required": ["gateway"],
            "properties": {"gateway": {"type": "object"}, "inbound": {"maxItems": 0}},
        },
    ]
    inbound = schemas["Inbound"]
    inbound["required"] = ["interface", "tags"]
    inbound["properties"]["interface"] = _interface(
        INBOUND_PATTERN, "DATAPLANE_IP:DATAPLANE_PORT:WORKLOAD_PORT, ex. 192.168.0.100:9090:8080"
    )
    inbound["properties"]["tags"] = TAGS
    gateway = schemas["Gateway"]
    gateway["required"] = ["tags"]
    gateway["properties"]["tags"] = TAGS
    outbound = schemas["Outbound"]
    outbound["required"] = ["interface", "service"]
    outbound["properties"]["interface"] = _interface(
        OUTBOUND_PATTERN, "IP_ADDRESS:PORT, the IP optional, ex. 192.168.0.100:9090 or :9090"
    )
    outbound["properties"]["service"] = {"type": "string", "minLength": 1}
