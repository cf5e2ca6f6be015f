"""The provided-CA API (spec §5.2), served by the API here (Kuma: the admin server on
127.0.0.1:5679):

    POST   /meshes/{mesh}/ca/provided/certificates       {"cert": PEM, "key": PEM} -> {"id", "cert"}
    GET    /meshes/{mesh}/ca/provided/certificates       -> [{"id", "cert"}]
    DELETE /meshes/{mesh}/ca/provided/certificates/{id}
    DELETE /meshes/{mesh}/ca/provided                    (the whole CA, as Kuma's admin server)

Writes need the admin credential like every other (`write_guard`). The upload carries a CA
private key, which must never cross hosts in plaintext: it is accepted only from a loopback
peer or over a TLS connection (`key_transport_ok`); the API listens in plain HTTP, so in
practice from the control plane's own host (docs/security.md). Reads list certificates, never
keys. Storage and rules: `kuma/provided_ca.py`.
"""

from __future__ import annotations

from flask import Blueprint, Request, Response, request

from kuma import provided_ca
from kuma.errors import NotFoundError, ValidationError, Violation
from kuma.netutil import is_loopback
from kuma.resources.wire import name_violations, parse_json_text
from kuma.store.base import ResourceStore
from services.api.errors import error_response, titled
from services.api.responses import empty_response, json_response

ADD = "Could not add signing cert"
PROCESS = "Could not process the key pair"
RETRIEVE = "Could not retrieve signing certs"
DELETE = "Could not delete signing cert"
DELETE_CA = "Could not delete CA"
TRANSPORT_TITLE = "TLS or same host required"


def key_transport_ok(req: Request) -> bool:
    """Whether a private key in this request's body has not crossed hosts in plaintext: its
    peer is a loopback address, or the connection itself completed a TLS handshake
    (`wsgi.url_scheme`, which the servers set from the connection: kuma.edge.dual_listener)."""
    return is_loopback(req.remote_addr) or req.is_secure


def _mesh_violations(mesh: str) -> list[Violation]:
    out = name_violations("mesh", mesh)
    if len(mesh) > provided_ca.MAX_MESH_LENGTH:
        out.append(
            Violation("mesh", f"must be at most {provided_ca.MAX_MESH_LENGTH} characters long")
        )
    return out


def _not_found(mesh: str, what: str) -> NotFoundError:
    return NotFoundError("SigningCert", mesh, what)


def provided_ca_blueprint(store: ResourceStore) -> Blueprint:
    bp = Blueprint("provided_ca", __name__)
    base = "/meshes/<mesh>/ca/provided"

    @bp.post(f"{base}/certificates")
    def add(mesh: str) -> Response:
        if not key_transport_ok(request):
            return error_response(
                403,
                TRANSPORT_TITLE,
                "a CA private key is accepted only over TLS or from the control plane's own "
                "host: run `kumactl manage ca provided certificates add` there",
            )
        with titled(PROCESS):
            body = parse_json_text(request.get_data())
            if not isinstance(body, dict):
                raise ValidationError(details="body must be a JSON object")
        with titled(ADD):
            violations = _mesh_violations(mesh)
            if violations:
                raise ValidationError(violations)
            cert, key = provided_ca.check_pair_given(body.get("cert"), body.get("key"))
            added = provided_ca.add_signing_cert(store, mesh, cert, key)
        return json_response(added.public())

    @bp.get(f"{base}/certificates")
    def list_certs(mesh: str) -> Response:
        with titled(RETRIEVE):
            if _mesh_violations(mesh):
                raise _not_found(mesh, "")
            certs = provided_ca.signing_certs(store, mesh)
        return json_response([c.public() for c in certs])

    @bp.delete(f"{base}/certificates/<cert_id>")
    def delete_cert(mesh: str, cert_id: str) -> Response:
        with titled(DELETE):
            if _mesh_violations(mesh):
                raise _not_found(mesh, cert_id)
            provided_ca.delete_signing_cert(store, mesh, cert_id)
        return empty_response(200)

    @bp.delete(base)
    def delete_ca(mesh: str) -> Response:
        with titled(DELETE_CA):
            if _mesh_violations(mesh):
                raise _not_found(mesh, "")
            provided_ca.delete_ca(store, mesh)
        return empty_response(200)

    return bp
