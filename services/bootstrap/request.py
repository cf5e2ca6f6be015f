"""The `POST /bootstrap` body (spec §7.1), parsed strictly: anything malformed is a 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kuma.decode import load_json
from kuma.errors import ValidationError, Violation


@dataclass(frozen=True, slots=True)
class BootstrapRequest:
    mesh: str
    name: str
    admin_port: int = 0
    dataplane_token_path: str = ""
    dataplane_token: str = ""
    ca_cert: str = ""  # PEM: the CA kuma-dp trusts for the control plane (Kuma 1.x's `caCert`)
    access_log_socket_path: str = ""  # Kuma 1.x's `accessLogSocketPath`


def _string(body: dict[str, Any], key: str, out: list[Violation], required: bool) -> str:
    value = body.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        out.append(Violation(key, "must be a string"))
        return ""
    if required and not value:
        out.append(Violation(key, "cannot be empty"))
    return value


def _port(body: dict[str, Any], out: list[Violation]) -> int:
    value = body.get("adminPort", 0) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        out.append(Violation("adminPort", "must be an integer in the range [0, 65535]"))
        return 0
    return value


def parse_request(raw: bytes) -> BootstrapRequest:
    """Raise ValidationError (400) for a body that is not a JSON object with a mesh and a name.

    Kuma answered an empty mesh or name with 500 (spec §7.1); it is the caller's mistake, so 400.
    """
    try:
        body = load_json(raw or b"null")
    except ValueError:
        raise ValidationError(details="request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError(details="request body must be a JSON object")
    out: list[Violation] = []
    request = BootstrapRequest(
        mesh=_string(body, "mesh", out, required=True),
        name=_string(body, "name", out, required=True),
        admin_port=_port(body, out),
        dataplane_token_path=_string(body, "dataplaneTokenPath", out, required=False),
        dataplane_token=_string(body, "dataplaneToken", out, required=False),
        ca_cert=_string(body, "caCert", out, required=False),
        access_log_socket_path=_string(body, "accessLogSocketPath", out, required=False),
    )
    socket = request.access_log_socket_path
    if socket and not (socket.startswith("/") and len(socket.encode()) < 108):
        out.append(Violation("accessLogSocketPath", "must be an absolute path under 108 bytes"))
    if request.ca_cert and "-----BEGIN CERTIFICATE-----" not in request.ca_cert:
        out.append(Violation("caCert", "must be a PEM certificate"))
    if out:
        raise ValidationError(out, details="Invalid bootstrap request")
    return request
