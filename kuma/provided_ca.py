"""The provided CA of a Mesh (spec §3.4, §5.2): a signing certificate and key the operator
uploads (`kumactl manage ca provided certificates add`), which then signs the mesh's workload
certificates in place of a generated root (`kuma.ca` reads it through `signing_pairs`).

Storage is Kuma's: the internal Secret `providedca.{mesh}` in that mesh, value JSON
`{"signingKeyCerts": [{"id": <uuid>, "cert": <base64 PEM>, "key": <base64 PEM>}]}`. The Mesh need
not exist yet (upload first, then create the Mesh with `ca.provided`); deleting the Mesh deletes
the Secret with everything else in it. The API never serves Secrets: `GET` lists the
certificates only, never a key.

Rules, as in Kuma 0.3.2: at most one signing certificate per mesh; a Mesh using the provided CA
needs one before it is stored (`kuma.manager`); it cannot be deleted while its Mesh has mTLS on
with the provided CA. Uploads are checked as Kuma 0.4 added (`validate_pair`), plus expiry.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kuma.errors import (
    AlreadyExistsError,
    ConflictError,
    KumaError,
    NotFoundError,
    ValidationError,
    Violation,
)
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.base import ResourceStore

SECRET_PREFIX = "providedca."
# The store's key columns are varchar(100): the Secret's name must fit.
MAX_MESH_LENGTH = 100 - len(SECRET_PREFIX)

NO_SIGNING_CERT = (
    "There is no signing certificate in provided CA for a given mesh. "
    "Add certificate via 'kumactl manage ca provided certificates add' command."
)
IN_USE = (
    "Cannot delete signing certificate when the mTLS in the mesh is active and type of CA is "
    "Provided"
)
CA_IN_USE = (
    "Cannot delete certificate authority when the mTLS in the mesh is active and type of CA is "
    "Provided"
)
ONLY_ONE = "cannot add more than 1 CA root to provided CA"

NOT_SELF_SIGNED = "certificate must be self-signed (intermediate CAs are not allowed)"
CHAIN = "certificate must be a root CA (certificate chains are not allowed)"
NOT_CA = "basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic Constraints)"
NO_CERT_SIGN = "key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. Key Usage)"
BAD_PAIR = "not a valid TLS key pair: "
# Go's crypto/tls wording, which Kuma's messages carried after BAD_PAIR.
NO_CERT_PEM = "tls: failed to find any PEM data in certificate input"
NO_KEY_PEM = "tls: failed to find any PEM data in key input"
BAD_KEY = "tls: failed to parse private key"
KEY_MISMATCH = "tls: private key does not match public key"
BAD_CERT = "x509: malformed certificate"
SUPPORTED_KEYS = "RSA of at least 2048 bits, or EC P-256 or P-384"
EC_CURVES = ("secp256r1", "secp384r1")

# The operation that changes the Secret is retried this many times when a concurrent writer
# wins the store's version check.
WRITE_ATTEMPTS = 5


class ProvidedCaFullError(KumaError):
    """A second signing certificate for one mesh (Kuma: 500 with this message in its log)."""

    http_status = 409
    details = ONLY_ONE

    def __init__(self) -> None:
        super().__init__(ONLY_ONE)


def secret_name(mesh: str) -> str:
    return f"{SECRET_PREFIX}{mesh}"


@dataclass(frozen=True, slots=True)
class SigningCert:
    id: str
    cert_pem: bytes
    key_pem: bytes

    def public(self) -> dict[str, str]:
        """The API's view: `{"id", "cert"}`, never the key."""
        return {"id": self.id, "cert": self.cert_pem.decode("ascii", errors="replace")}


# --- validation -----------------------------------------------------------------------------


def _utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_type_problem(key: object) -> str | None:
    if isinstance(key, rsa.RSAPrivateKey):
        return None if key.key_size >= 2048 else f"RSA key of {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return None if key.curve.name in EC_CURVES else f"EC key on curve {key.curve.name}"
    return f"{type(key).__name__.removeprefix('_')} key"


def validate_pair(
    cert_pem: bytes, key_pem: bytes, now: dt.datetime | None = None
) -> list[Violation]:
    """What is wrong with a signing certificate and key (empty: nothing).

    Kuma 0.4's rules and messages: a key pair (the key parses and matches the certificate), one
    certificate only, self-signed (Envoy needs its trust anchor to be a root), a CA (basic
    constraints), allowed to sign certificates (key usage keyCertSign). Added here: valid now,
    and a key this CA can sign with (RSA >= 2048 bits, EC P-256/P-384)."""
    if b"-----BEGIN" not in cert_pem:
        return [Violation("cert", BAD_PAIR + NO_CERT_PEM)]
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return [Violation("cert", BAD_PAIR + BAD_CERT)]
    if b"-----BEGIN" not in key_pem:
        return [Violation("cert", BAD_PAIR + NO_KEY_PEM)]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):  # TypeError: an encrypted key
        return [Violation("cert", BAD_PAIR + BAD_KEY)]
    cert = certs[0]
    try:
        matches = _spki(key.public_key()) == _spki(cert.public_key())
    except (ValueError, TypeError, AttributeError):
        matches = False
    if not matches:
        return [Violation("cert", BAD_PAIR + KEY_MISMATCH)]
    if len(certs) != 1:
        return [Violation("cert", CHAIN)]
    out: list[Violation] = []
    if cert.issuer != cert.subject or not _self_signed(cert):
        out.append(Violation("cert", NOT_SELF_SIGNED))
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        out.append(Violation("cert", NOT_CA))
    try:
        cert_sign = cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        cert_sign = False
    if not cert_sign:
        out.append(Violation("cert", NO_CERT_SIGN))
    moment = now or dt.datetime.now(dt.UTC)
    if moment >= cert.not_valid_after_utc:
        until = _utc(cert.not_valid_after_utc)
        out.append(Violation("cert", f"certificate has expired (not valid after {until})"))
    elif moment < cert.not_valid_before_utc:
        since = _utc(cert.not_valid_before_utc)
        out.append(Violation("cert", f"certificate is not valid yet (not valid before {since})"))
    problem = _key_type_problem(key)
    if problem is not None:
        out.append(Violation("key", f"unsupported {problem}: use {SUPPORTED_KEYS}"))
    return out


def _self_signed(cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# --- storage --------------------------------------------------------------------------------


def _decode(data: bytes) -> list[SigningCert]:
    if not data:
        return []
    try:
        doc = json.loads(data)
        return [
            SigningCert(str(c["id"]), base64.b64decode(c["cert"]), base64.b64decode(c["key"]))
            for c in doc.get("signingKeyCerts") or []
        ]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise KumaError(f"the provided CA secret is not readable: {exc}") from None


def _encode(certs: list[SigningCert]) -> bytes:
    doc = {
        "signingKeyCerts": [
            {
                "id": c.id,
                "cert": base64.b64encode(c.cert_pem).decode(),
                "key": base64.b64encode(c.key_pem).decode(),
            }
            for c in certs
        ]
    }
    return json.dumps(doc).encode()


def _read(store: ResourceStore, mesh: str) -> tuple[Resource, list[SigningCert]]:
    """The Secret and its certificates; NotFoundError when the mesh has no provided CA."""
    found = store.get(SECRET, mesh, secret_name(mesh))
    return found, _decode(bytes(found.spec.data))


def signing_certs(store: ResourceStore, mesh: str) -> list[SigningCert]:
    """The mesh's signing certificates; NotFoundError when it has no provided CA at all."""
    return _read(store, mesh)[1]


def signing_pairs(store: ResourceStore, mesh: str) -> list[tuple[bytes, bytes]]:
    """(cert PEM, key PEM) of each signing certificate, the first signs; [] when none."""
    try:
        return [(c.cert_pem, c.key_pem) for c in signing_certs(store, mesh)]
    except NotFoundError:
        return []


def has_signing_cert(store: ResourceStore, mesh: str) -> bool:
    return bool(signing_pairs(store, mesh))


def check_pair_given(cert: object, key: object) -> tuple[bytes, bytes]:
    """The request's `cert` and `key`, both non-empty strings (Kuma's 400 otherwise)."""
    violations = [
        Violation(field, "must not be empty")
        for field, value in (("cert", cert), ("key", key))
        if not value
    ]
    violations += [
        Violation(field, "must be a string")
        for field, value in (("cert", cert), ("key", key))
        if value and not isinstance(value, str)
    ]
    if violations:
        raise ValidationError(violations)
    assert isinstance(cert, str) and isinstance(key, str)
    return cert.encode(), key.encode()


def add_signing_cert(
    store: ResourceStore, mesh: str, cert_pem: bytes, key_pem: bytes
) -> SigningCert:
    """Check the pair (ValidationError), then store it as the mesh's signing certificate;
    ProvidedCaFullError when the mesh already has one."""
    violations = validate_pair(cert_pem, key_pem)
    if violations:
        raise ValidationError(violations)
    added = SigningCert(str(uuid.uuid4()), cert_pem, key_pem)
    for _ in range(WRITE_ATTEMPTS):
        try:
            current, certs = _read(store, mesh)
        except NotFoundError:
            spec = SecretSpec(data=_encode([added]))
            try:
                store.create(Resource(type=SECRET, mesh=mesh, name=secret_name(mesh), spec=spec))
            except AlreadyExistsError:
                continue  # a concurrent upload: read what it stored
            return added
        if certs:
            raise ProvidedCaFullError()
        try:
            store.update(replace(current, spec=SecretSpec(data=_encode([added]))))
        except (ConflictError, NotFoundError):
            continue
        return added
    raise ConflictError(SECRET, mesh, secret_name(mesh))


def _check_not_in_use(store: ResourceStore, mesh: str, message: str) -> None:
    try:
        spec = store.get(MESH, mesh, mesh).spec
    except NotFoundError:
        return
    if spec.mtls_enabled and spec.ca_kind == "provided":
        raise ValidationError(details=message)


def delete_signing_cert(store: ResourceStore, mesh: str, cert_id: str) -> None:
    """Remove one signing certificate. ValidationError while the Mesh uses it; NotFoundError
    for an unknown id (or a mesh without a provided CA)."""
    for _ in range(WRITE_ATTEMPTS):
        _check_not_in_use(store, mesh, IN_USE)
        current, certs = _read(store, mesh)
        kept = [c for c in certs if c.id != cert_id]
        if len(kept) == len(certs):
            raise NotFoundError("SigningCert", mesh, cert_id)
        try:
            store.update(replace(current, spec=SecretSpec(data=_encode(kept))))
        except (ConflictError, NotFoundError):
            continue
        return
    raise ConflictError(SECRET, mesh, secret_name(mesh))


def delete_ca(store: ResourceStore, mesh: str) -> None:
    """Remove the mesh's provided CA (the Secret). ValidationError while the Mesh uses it;
    NotFoundError when there is none."""
    _check_not_in_use(store, mesh, CA_IN_USE)
    store.delete(SECRET, mesh, secret_name(mesh))
