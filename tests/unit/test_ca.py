"""The builtin Mesh CA (kuma/ca.py): root and workload certificate properties, CSR checks, and
the CA's life with its Mesh (kuma/manager.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuma import ca
from kuma.errors import AlreadyExistsError, MeshNotFoundError, NotFoundError
from kuma.manager import ResourceManager
from kuma.resources.base import Resource
from kuma.resources.mesh import BuiltinCA, CertificateAuthority, MeshSpec, Mtls, ProvidedCA
from kuma.resources.registry import MESH, SECRET
from kuma.store import MemoryStore


def _uris(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in san]


@pytest.fixture()
def manager() -> ResourceManager:
    m = ResourceManager(MemoryStore())
    m.create(Resource(type=MESH, mesh="demo", name="demo", spec=MeshSpec()))
    return m


def test_root_properties() -> None:
    root = ca.generate_root("demo")
    cert = root.cert
    assert isinstance(root.key, ec.EllipticCurvePrivateKey) and root.key.curve.name == "secp256r1"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "demo"
    assert cert.subject == cert.issuer and cert.serial_number > 0
    assert _uris(cert) == ["spiffe://demo"]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3649) < life < dt.timedelta(days=3651)
    cert.verify_directly_issued_by(cert)


def test_mesh_create_stores_the_ca_as_an_internal_secret(manager: ResourceManager) -> None:
    secret = manager.get(SECRET, "demo", "builtinca.demo")
    roots = ca.decode_roots(bytes(secret.spec.data))
    assert len(roots) == 1 and _uris(roots[0].cert) == ["spiffe://demo"]
    assert ca.mesh_ca_bundle(manager.store, "demo") == roots[0].cert_pem
    # Deleting the Mesh takes its CA along.
    manager.delete(MESH, "demo", "demo")
    with pytest.raises(NotFoundError):
        manager.get(SECRET, "demo", "builtinca.demo")


def test_ca_is_rolled_back_when_storing_the_mesh_fails() -> None:
    class FailingMeshStore(MemoryStore):
        def create(self, resource: Resource) -> Resource:
            if resource.type == MESH:
                raise ConnectionError("the store went away")
            return super().create(resource)

    store = FailingMeshStore()
    with pytest.raises(ConnectionError):
        ResourceManager(store).create(Resource(type=MESH, mesh="m", name="m", spec=MeshSpec()))
    with pytest.raises(NotFoundError):
        store.get(SECRET, "m", "builtinca.m")


def test_existing_mesh_keeps_its_ca_when_created_again(manager: ResourceManager) -> None:
    before = manager.get(SECRET, "demo", "builtinca.demo")
    with pytest.raises(AlreadyExistsError):
        manager.create(Resource(type=MESH, mesh="demo", name="demo", spec=MeshSpec()))
    assert manager.get(SECRET, "demo", "builtinca.demo").spec == before.spec


def test_ca_is_ensured_lazily_for_an_existing_mesh(manager: ResourceManager) -> None:
    manager.store.delete(SECRET, "demo", "builtinca.demo")  # e.g. a Mesh from before this CA
    bundle = ca.mesh_ca_bundle(manager.store, "demo")
    assert x509.load_pem_x509_certificate(bundle).subject.rfc4514_string().startswith("CN=demo")
    assert ca.mesh_ca_bundle(manager.store, "demo") == bundle  # created once


def test_unsupported_or_missing_mesh() -> None:
    store = MemoryStore()
    with pytest.raises(MeshNotFoundError):
        ca.mesh_ca_bundle(store, "nope")
    provided = MeshSpec(mtls=Mtls(ca=CertificateAuthority(provided=ProvidedCA())))
    store.create(Resource(type=MESH, mesh="p", name="p", spec=provided))
    with pytest.raises(ca.UnsupportedCaError):
        ca.mesh_ca_bundle(store, "p")


@pytest.mark.parametrize("by", ["csr", "key"])
def test_workload_certificate_properties(manager: ResourceManager, by: str) -> None:
    """Alike whether the CA was sent a CSR (the worker) or signs a key made in its own
    process (the xDS service's InProcessCA)."""
    key = ca.new_private_key()
    csr = ca.workload_csr(key, "demo", "backend")
    before = dt.datetime.now(dt.UTC)
    authority = ca.InProcessCA(manager.store)
    if by == "csr":
        chain = authority.sign("demo", "backend", csr, 3600)
    else:
        chain = authority.sign_key("demo", "backend", key.public_key(), 3600)
    leaf = x509.load_pem_x509_certificate(chain)
    root = x509.load_pem_x509_certificate(ca.mesh_ca_bundle(manager.store, "demo"))

    leaf.verify_directly_issued_by(root)  # the chain: signed by the mesh root
    assert leaf.issuer == root.subject
    assert leaf.public_key() == key.public_key()
    assert leaf.subject == x509.Name([])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and _uris(leaf) == ["spiffe://demo/backend"]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.not_valid_before_utc <= before
    life = leaf.not_valid_after_utc - before
    assert dt.timedelta(minutes=59) < life <= dt.timedelta(hours=1, seconds=1)
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    # Random serials: two certificates never share one.
    other = x509.load_pem_x509_certificate(
        ca.sign_workload(manager.store, "demo", "backend", csr, 60)
    )
    assert other.serial_number != leaf.serial_number


@pytest.mark.parametrize(
    ("service", "ttl", "error"),
    [
        ("back/end", 60, "invalid service name"),
        ("", 60, "invalid service name"),
        ("backend", 0, "lifetime must be in"),
        ("backend", 10 * 365 * 86400, "lifetime must be in"),
    ],
)
def test_a_key_is_signed_under_the_same_rules_as_a_csr(
    manager: ResourceManager, service: str, ttl: float, error: str
) -> None:
    key = ca.new_private_key()
    with pytest.raises(ca.CertificateRequestError, match=error):
        ca.sign_workload_key(manager.store, "demo", service, key.public_key(), ttl)
    with pytest.raises(MeshNotFoundError):
        ca.sign_workload_key(manager.store, "nope", "backend", key.public_key(), 60)


def test_rsa_csr_is_accepted(manager: ResourceManager) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://demo/web")]),
            critical=True,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    leaf = x509.load_pem_x509_certificate(ca.sign_workload(manager.store, "demo", "web", csr, 60))
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def _csr_with(names: list[x509.GeneralName]) -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .sign(ca.new_private_key(), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


@pytest.mark.parametrize(
    ("csr", "service"),
    [
        (lambda: ca.workload_csr(ca.new_private_key(), "demo", "web"), "backend"),  # other service
        (
            lambda: ca.workload_csr(ca.new_private_key(), "other", "backend"),
            "backend",
        ),  # other mesh
        (
            lambda: _csr_with(
                [
                    x509.UniformResourceIdentifier("spiffe://demo/backend"),
                    x509.DNSName("evil.example"),
                ]
            ),
            "backend",
        ),
        (lambda: _csr_with([x509.DNSName("backend")]), "backend"),
        (lambda: b"not a csr", "backend"),
    ],
)
def test_csr_for_another_identity_is_rejected(manager: ResourceManager, csr, service) -> None:
    with pytest.raises(ca.CertificateRequestError):
        ca.sign_workload(manager.store, "demo", service, csr(), 60)


def test_lifetime_bounds(manager: ResourceManager) -> None:
    csr = ca.workload_csr(ca.new_private_key(), "demo", "backend")
    for ttl in (0, -1, dt.timedelta(days=366)):
        with pytest.raises(ca.CertificateRequestError):
            ca.sign_workload(manager.store, "demo", "backend", csr, ttl)


def test_builtin_spec_default_creates_a_ca_even_with_mtls_off() -> None:
    m = ResourceManager(MemoryStore())
    spec = MeshSpec(mtls=Mtls(enabled=False, ca=CertificateAuthority(builtin=BuiltinCA())))
    m.create(Resource(type=MESH, mesh="x", name="x", spec=spec))
    assert m.get(SECRET, "x", "builtinca.x")
