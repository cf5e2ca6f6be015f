"""The certificate authority of a Mesh (spec §3.4, §9.4), and workload certificate signing.

Each Mesh with a builtin CA has one root, stored as the internal Secret `builtinca.{mesh}` in that
mesh (value: JSON `{"roots": [{"cert": <base64 PEM>, "key": <base64 PEM>}]}`, Kuma's layout). The
API never serves Secrets, and deleting the Mesh deletes it with everything else in the mesh.
A Mesh with a provided CA signs with the certificate and key the operator uploaded
(`kuma/provided_ca.py`, Secret `providedca.{mesh}`): `mesh_roots` picks the CA by the Mesh's
`mtls.ca` type, and the same signing code runs for both.

Key type: **EC P-256 (ECDSA with SHA-256)** for roots and workload keys, where Kuma used RSA 2048.
Generating a P-256 key takes well under a millisecond against tens of milliseconds for RSA 2048,
which matters because a workload key is generated for every dataplane and every rotation; the
signatures and certificates are several times smaller (cheaper handshakes); the security level is
~128 bits against RSA 2048's ~112; and every TLS stack in a mesh (Envoy's BoringSSL, gRPC, Go,
OpenSSL) supports it.

Root: self-signed, random positive serial (Kuma used 0, which RFC 5280 forbids), subject
`O=Kuma, OU=Mesh, CN={mesh}`, URI SAN `spiffe://{mesh}`, CA with path length 0, key usage
certSign + cRLSign, valid from now-10s for 10 years.

Workload certificate: empty subject with a critical URI SAN `spiffe://{mesh}/{service}` (the only
SAN), key usage digitalSignature + keyAgreement, extended key usage serverAuth + clientAuth, not a
CA, valid from now-10s for the requested lifetime (capped by the root's own expiry).

Signing is a set of plain functions over the store (`sign_workload`, `mesh_ca_bundle`) so that
whoever holds the CA keys can host them: `kuma-cp run` and the xDS service call them in-process
through `InProcessCA`; the worker service exposes the same two operations over RPC and its client
implements the `CertificateAuthority` protocol.

The builtin CA is created with the Mesh (kuma/manager.py), and *ensured* on first use by the
signing functions, so enabling mTLS on a Mesh that was created without one (or whose CA type was
switched to builtin) works too, unlike Kuma 0.3 (spec §16.3).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuma import provided_ca
from kuma.errors import AlreadyExistsError, KumaError, MeshNotFoundError, NotFoundError
from kuma.prom import go_counter
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.base import ResourceStore

__all__ = [
    "CaRoot",
    "CertificateAuthority",
    "CertificateReplyError",
    "CertificateRequestError",
    "InProcessCA",
    "UnsupportedCaError",
    "builtin_ca_name",
    "check_workload_chain",
    "create_builtin_ca",
    "delete_builtin_ca",
    "ensure_builtin_ca",
    "generate_root",
    "mesh_ca_bundle",
    "mesh_roots",
    "new_private_key",
    "private_key_pem",
    "sign_workload",
    "spiffe_id",
    "workload_csr",
]

ROOT_VALIDITY = dt.timedelta(days=3650)
BACKDATE = dt.timedelta(seconds=10)  # tolerate small clock skew between peers
MAX_WORKLOAD_TTL = dt.timedelta(days=365)
# Kuma's metric: workload certificates signed, by mesh (wherever signing runs)
CERT_GENERATION = go_counter("cert_generation", "Number of generated certificates", ["mesh"])


class CertificateRequestError(KumaError):
    """A CSR that cannot be signed: bad signature, wrong identity, unsupported key."""


class UnsupportedCaError(KumaError):
    """The Mesh's CA cannot sign: no CA type, a provided CA without a signing certificate, or
    a CA certificate that is not valid now."""


def spiffe_id(mesh: str, service: str | None = None) -> str:
    """`spiffe://{mesh}` (the root), or `spiffe://{mesh}/{service}` (a workload)."""
    return f"spiffe://{mesh}" if service is None else f"spiffe://{mesh}/{service}"


def builtin_ca_name(mesh: str) -> str:
    return f"builtinca.{mesh}"


# --- keys -----------------------------------------------------------------------------------


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _serial() -> int:
    return secrets.randbits(127) | 1  # positive, non-zero, at most 20 octets (RFC 5280)


# --- roots ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaRoot:
    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return _load_cert(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        return _load_key(self.key_pem)


@lru_cache(maxsize=256)
def _load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


@lru_cache(maxsize=256)
def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError(f"unsupported CA key type {type(key).__name__}")
    return key


def generate_root(mesh: str, now: dt.datetime | None = None) -> CaRoot:
    now = now or _now()
    key = new_private_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kuma"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, mesh),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(mesh))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CaRoot(cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key))


def encode_roots(roots: Sequence[CaRoot]) -> bytes:
    doc = {
        "roots": [
            {
                "cert": base64.b64encode(r.cert_pem).decode(),
                "key": base64.b64encode(r.key_pem).decode(),
            }
            for r in roots
        ]
    }
    return json.dumps(doc).encode()


def decode_roots(data: bytes) -> list[CaRoot]:
    doc = json.loads(data)
    return [CaRoot(base64.b64decode(r["cert"]), base64.b64decode(r["key"])) for r in doc["roots"]]


def _stored_roots(store: ResourceStore, mesh: str) -> list[CaRoot] | None:
    try:
        found = store.get(SECRET, mesh, builtin_ca_name(mesh))
    except NotFoundError:
        return None
    return decode_roots(bytes(found.spec.data))


def create_builtin_ca(store: ResourceStore, mesh: str) -> bool:
    """Store a new builtin CA for `mesh` unless one exists. True if this call created it.

    Does not check that the Mesh exists: the Mesh manager calls it *before* storing the Mesh."""
    if _stored_roots(store, mesh) is not None:
        return False
    secret = Resource(
        type=SECRET,
        mesh=mesh,
        name=builtin_ca_name(mesh),
        spec=SecretSpec(data=encode_roots([generate_root(mesh)])),
    )
    try:
        store.create(secret)
    except AlreadyExistsError:
        return False  # a concurrent creator won; its CA is the one
    return True


def delete_builtin_ca(store: ResourceStore, mesh: str) -> None:
    with contextlib.suppress(NotFoundError):
        store.delete(SECRET, mesh, builtin_ca_name(mesh))


def ensure_builtin_ca(store: ResourceStore, mesh: str) -> list[CaRoot]:
    """The roots of `mesh`'s builtin CA, created first when missing (the Mesh must exist and
    use a builtin CA). Safe when several processes race: the store keeps the first."""
    roots = _stored_roots(store, mesh)
    if roots is not None:
        return roots
    try:
        mesh_resource = store.get(MESH, mesh, mesh)
    except NotFoundError:
        raise MeshNotFoundError(mesh) from None
    kind = mesh_resource.spec.ca_kind
    if kind != "builtin":
        raise UnsupportedCaError(f'mesh "{mesh}": CA type "{kind}" is not supported for signing')
    create_builtin_ca(store, mesh)
    roots = _stored_roots(store, mesh)
    assert roots is not None
    return roots


def mesh_roots(store: ResourceStore, mesh: str) -> list[CaRoot]:
    """The CA of `mesh` by its `mtls.ca` type, the signing one first: the builtin roots
    (created when missing) or the provided CA's signing certificates. MeshNotFoundError, or
    UnsupportedCaError when the mesh has nothing to sign with."""
    try:
        mesh_resource = store.get(MESH, mesh, mesh)
    except NotFoundError:
        raise MeshNotFoundError(mesh) from None
    kind = mesh_resource.spec.ca_kind
    if kind == "builtin":
        return ensure_builtin_ca(store, mesh)
    if kind == "provided":
        pairs = provided_ca.signing_pairs(store, mesh)
        if not pairs:
            raise UnsupportedCaError(f'mesh "{mesh}": the provided CA has no signing certificate')
        return [CaRoot(cert, key) for cert, key in pairs]
    raise UnsupportedCaError(f'mesh "{mesh}": CA type "{kind}" is not supported for signing')


# --- signing --------------------------------------------------------------------------------


def workload_csr(key: ec.EllipticCurvePrivateKey, mesh: str, service: str) -> bytes:
    """A PEM CSR asking for the identity `spiffe://{mesh}/{service}`."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(mesh, service))]),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _checked_csr(csr_pem: bytes, mesh: str, service: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CertificateRequestError(f"not a PEM certificate request: {exc}") from None
    if not csr.is_signature_valid:
        raise CertificateRequestError("the certificate request's signature is not valid")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise CertificateRequestError(f"unsupported EC curve {key.curve.name}")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CertificateRequestError("RSA keys must have at least 2048 bits")
    else:
        raise CertificateRequestError(f"unsupported key type {type(key).__name__}")
    expected = spiffe_id(mesh, service)
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateRequestError(f"the request must name {expected}") from None
    names = list(san)
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if uris != [expected] or len(names) != 1:
        raise CertificateRequestError(
            f"the request names {[str(n.value) for n in names]}, expected only {expected}"
        )
    return csr


def sign_workload(
    store: ResourceStore,
    mesh: str,
    service: str,
    csr_pem: bytes,
    ttl: dt.timedelta | float,
) -> bytes:
    """Sign a workload CSR for `spiffe://{mesh}/{service}` with the mesh's CA (`mesh_roots`:
    builtin or provided), valid for `ttl` (a timedelta or seconds). Returns the certificate
    chain PEM, leaf first (the root is the trust anchor sent as `mesh_ca`, not part of the
    chain)."""
    ttl = _checked_request(service, ttl)
    csr = _checked_csr(csr_pem, mesh, service)
    return _certificate(store, mesh, service, csr.public_key(), ttl)  # type: ignore[arg-type]


def sign_workload_key(
    store: ResourceStore,
    mesh: str,
    service: str,
    public: ec.EllipticCurvePublicKey,
    ttl: dt.timedelta | float,
) -> bytes:
    """`sign_workload` for a key made in this process: no CSR, as there is no one to prove
    possession of the key to (the CSR and its check were a third of an identity's CPU)."""
    return _certificate(store, mesh, service, public, _checked_request(service, ttl))


def _checked_request(service: str, ttl: dt.timedelta | float) -> dt.timedelta:
    if not isinstance(ttl, dt.timedelta):
        ttl = dt.timedelta(seconds=ttl)
    if ttl <= dt.timedelta(0) or ttl > MAX_WORKLOAD_TTL:
        raise CertificateRequestError(f"lifetime must be in (0, {MAX_WORKLOAD_TTL}]")
    if not service or any(c in service for c in "/ \t\n"):
        raise CertificateRequestError(f"invalid service name {service!r}")
    return ttl


def _certificate(
    store: ResourceStore,
    mesh: str,
    service: str,
    public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    ttl: dt.timedelta,
) -> bytes:
    root = mesh_roots(store, mesh)[0]
    issuer = root.cert
    now = _now()
    if not issuer.not_valid_before_utc <= now < issuer.not_valid_after_utc:
        raise UnsupportedCaError(f'mesh "{mesh}": the CA certificate is not valid now')
    not_after = min(now + ttl, issuer.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(public)
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=isinstance(public, ec.EllipticCurvePublicKey),
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(mesh, service))]),
            critical=True,  # the subject is empty (RFC 5280 §4.2.1.6)
        )
        .add_extension(_authority_key_id(issuer), critical=False)
        .sign(root.key, hashes.SHA256())
    )
    CERT_GENERATION.labels(mesh).inc()
    return cert.public_bytes(serialization.Encoding.PEM)


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The issuer's own subject key id when it has one (a provided CA may have computed it
    another way than a hash of its key: verifiers match the two), else one from its key."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


class CertificateReplyError(KumaError):
    """A signed chain that does not answer the request: another key, another identity, not
    issued by the mesh's CA, not currently valid. Raised by `check_workload_chain`."""


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_workload_chain(
    chain_pem: bytes,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    mesh: str,
    service: str,
    roots_pem: bytes,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Check a chain the CA returned before using it; return its leaf.

    The leaf must certify `public_key` (the CSR's), name exactly `spiffe://{mesh}/{service}` and
    nothing else, not be a CA, be valid now (within BACKDATE of skew), and chain, through the
    chain's other certificates (each a CA issued by the next), to one of the roots of
    `roots_pem` (the mesh's trust bundle). CertificateReplyError otherwise."""
    expected = spiffe_id(mesh, service)
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
        roots = x509.load_pem_x509_certificates(roots_pem)
    except ValueError as exc:
        raise CertificateReplyError(
            f"{expected}: the reply is not PEM certificates: {exc}"
        ) from None
    if not chain or not roots:
        raise CertificateReplyError(f"{expected}: empty certificate chain or trust bundle")
    leaf = chain[0]
    if _spki(leaf.public_key()) != _spki(public_key):
        raise CertificateReplyError(f"{expected}: the certificate is for another key")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateReplyError(f"{expected}: the certificate names no identity") from None
    names = [str(n.value) for n in san]
    if san.get_values_for_type(x509.UniformResourceIdentifier) != [expected] or len(names) != 1:
        raise CertificateReplyError(f"{expected}: the certificate names {names}")
    moment = now or _now()
    for cert in chain:
        if not cert.not_valid_before_utc - BACKDATE <= moment < cert.not_valid_after_utc:
            raise CertificateReplyError(f"{expected}: a certificate of the chain is not valid now")
    for position, cert in enumerate(chain):
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if is_ca != (position > 0):
            what = "the leaf is a CA" if position == 0 else "an intermediate is not a CA"
            raise CertificateReplyError(f"{expected}: {what}")
    for cert, issuer in zip(chain, chain[1:], strict=False):
        if not _issued_by(cert, issuer):
            raise CertificateReplyError(f"{expected}: the chain is broken")
    if not any(_issued_by(chain[-1], root) for root in roots):
        raise CertificateReplyError(
            f"{expected}: the certificate is not issued by mesh {mesh!r}'s CA"
        )
    return leaf


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def mesh_ca_bundle(store: ResourceStore, mesh: str) -> bytes:
    """The PEM roots a peer of `mesh` must trust (every root or signing certificate of its CA,
    joined), ensuring a builtin CA."""
    return b"".join(_pem_line_ended(r.cert_pem) for r in mesh_roots(store, mesh))


def _pem_line_ended(pem: bytes) -> bytes:
    return pem if pem.endswith(b"\n") else pem + b"\n"


# --- the seam -------------------------------------------------------------------------------


class CertificateAuthority(Protocol):
    """What a certificate consumer (the xDS service) needs from whoever holds the CA keys.

    Both operations are blocking (call them off the event loop) and take and return only plain
    values, so an RPC client (the worker's nameko service) implements them directly; PEM may come
    back as `str` or `bytes` (consumers accept both). Errors: `CertificateRequestError` (bad
    CSR), `MeshNotFoundError`, `UnsupportedCaError`, or the transport's own.

    An authority may say how many `sign` calls it takes at once (`concurrent_calls`, 1 when
    absent): the xDS service issues a mesh's identities that many at a time. `InProcessCA`, the
    one authority in the caller's own process, also signs a key without a CSR (`sign_key`):
    a CSR proves possession of the key to a CA elsewhere.
    """

    def sign(self, mesh: str, service: str, csr_pem: bytes, ttl_seconds: float) -> bytes | str:
        """Sign a CSR for `spiffe://{mesh}/{service}`, valid `ttl_seconds`; the chain PEM, leaf
        first (`sign_workload`)."""
        ...

    def mesh_ca(self, mesh: str) -> bytes | str:
        """The mesh's CA root(s) as PEM: the trust bundle (`mesh_ca_bundle`)."""
        ...


class InProcessCA:
    """The CA functions over a store, in this process (`kuma-cp run`, the xDS service)."""

    # Signing here is CPU work under the GIL: more threads would only take turns.
    concurrent_calls = 1

    def __init__(self, store: ResourceStore) -> None:
        self.store = store

    def sign(self, mesh: str, service: str, csr_pem: bytes, ttl_seconds: float) -> bytes:
        return sign_workload(self.store, mesh, service, csr_pem, ttl_seconds)

    def sign_key(
        self, mesh: str, service: str, public: ec.EllipticCurvePublicKey, ttl_seconds: float
    ) -> bytes:
        """`sign` for a key the caller made in this process (`sign_workload_key`)."""
        return sign_workload_key(self.store, mesh, service, public, ttl_seconds)

    def mesh_ca(self, mesh: str) -> bytes:
        return mesh_ca_bundle(self.store, mesh)
