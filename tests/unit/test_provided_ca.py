"""The provided CA (kuma/provided_ca.py): Kuma 0.4's upload checks with their messages, Kuma's
storage and rules (one signing certificate, not deleted while in use, a Mesh needs one), and
workload certificates signed by it through the same code as the builtin CA's (kuma/ca.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kuma import ca, provided_ca
from kuma.errors import NotFoundError, ValidationError
from kuma.manager import ResourceManager
from kuma.resources import wire
from kuma.resources.registry import MESH, SECRET
from kuma.store import MemoryStore
from tests.ca_certs import cert_pem, key_pem, make_ca

SVID = "(see X509-SVID: {})"
NOT_CA = "basic constraint 'CA' must be set to 'true' " + SVID.format("4.1. Basic Constraints")
NO_CERT_SIGN = "key usage extension 'keyCertSign' must be set " + SVID.format("4.3. Key Usage")
NO_SIGNING_CERT = (
    "There is no signing certificate in provided CA for a given mesh. Add certificate via "
    "'kumactl manage ca provided certificates add' command."
)


def _mesh(name: str, *, enabled: bool, kind: str = "provided"):
    return wire.from_json(
        {"type": "Mesh", "name": name, "mtls": {"enabled": enabled, "ca": {kind: {}}}}
    )


def _causes(exc: ValidationError) -> list[tuple[str, str]]:
    return [(v.field, v.message) for v in exc.violations]


@pytest.fixture()
def manager() -> ResourceManager:
    return ResourceManager(MemoryStore())


# --- validation -----------------------------------------------------------------------------


def test_a_good_root_passes() -> None:
    assert provided_ca.validate_pair(*make_ca()) == []
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert provided_ca.validate_pair(*make_ca(key=rsa_key)) == []


@pytest.mark.parametrize(
    ("kwargs", "messages"),
    [
        ({"ca": False}, [NOT_CA]),
        ({"cert_sign": False}, [NO_CERT_SIGN]),
        ({"key_usage": False}, [NO_CERT_SIGN]),  # Go: no extension is no keyCertSign
        ({"ca": False, "cert_sign": False}, [NOT_CA, NO_CERT_SIGN]),  # Kuma's "N violations"
    ],
)
def test_kuma_04_rules_with_kumas_messages(kwargs, messages) -> None:
    got = provided_ca.validate_pair(*make_ca(**kwargs))
    assert [(v.field, v.message) for v in got] == [("cert", m) for m in messages]


def test_expired_or_not_yet_valid() -> None:
    now = dt.datetime.now(dt.UTC)
    expired = make_ca(not_before=now - dt.timedelta(days=2), not_after=now - dt.timedelta(days=1))
    [violation] = provided_ca.validate_pair(*expired)
    assert violation.field == "cert"
    assert violation.message.startswith("certificate has expired (not valid after ")
    future = make_ca(not_before=now + dt.timedelta(days=1))
    [violation] = provided_ca.validate_pair(*future)
    assert violation.message.startswith("certificate is not valid yet (not valid before ")


def test_the_key_must_be_the_certificates() -> None:
    cert, _ = make_ca()
    _, other_key = make_ca()
    assert [(v.field, v.message) for v in provided_ca.validate_pair(cert, other_key)] == [
        ("cert", "not a valid TLS key pair: tls: private key does not match public key")
    ]


@pytest.mark.parametrize(
    ("cert", "key", "reason"),
    [
        (b"not pem", None, "tls: failed to find any PEM data in certificate input"),
        (None, b"not pem", "tls: failed to find any PEM data in key input"),
        (None, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", None, None),
    ],
)
def test_unreadable_pairs(cert, key, reason) -> None:
    good_cert, good_key = make_ca()
    [violation] = provided_ca.validate_pair(cert or good_cert, key or good_key)
    assert violation.field == "cert"
    assert violation.message.startswith("not a valid TLS key pair: ")
    if reason:
        assert violation.message.endswith(reason)


def test_an_intermediate_or_a_chain_is_refused() -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_cert_pem, _ = make_ca("root", key=root_key)
    root = x509.load_pem_x509_certificate(root_cert_pem)
    intermediate, intermediate_key = make_ca("intermediate", issuer=(root, root_key))
    assert [v.message for v in provided_ca.validate_pair(intermediate, intermediate_key)] == [
        "certificate must be self-signed (intermediate CAs are not allowed)"
    ]
    assert [
        v.message for v in provided_ca.validate_pair(intermediate + root_cert_pem, intermediate_key)
    ] == ["certificate must be a root CA (certificate chains are not allowed)"]


def test_keys_this_ca_cannot_sign_with() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    [violation] = provided_ca.validate_pair(*make_ca(key=small))
    assert violation.field == "key" and "RSA key of 1024 bits" in violation.message
    edwards = ed25519.Ed25519PrivateKey.generate()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "ed")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(edwards.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(edwards, None)
    )
    edwards_pem = edwards.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    [violation] = provided_ca.validate_pair(cert_pem(cert), edwards_pem)
    assert violation.field == "key" and violation.message.startswith("unsupported Ed25519")


# --- storage and rules ----------------------------------------------------------------------


def test_stored_in_kumas_layout_without_the_mesh(manager: ResourceManager) -> None:
    cert, key = make_ca()
    added = provided_ca.add_signing_cert(manager.store, "demo", cert, key)
    secret = manager.store.get(SECRET, "demo", "providedca.demo")
    doc = json.loads(bytes(secret.spec.data))
    assert doc == {
        "signingKeyCerts": [
            {
                "id": added.id,
                "cert": base64.b64encode(cert).decode(),
                "key": base64.b64encode(key).decode(),
            }
        ]
    }
    assert provided_ca.signing_certs(manager.store, "demo") == [added]
    assert added.public() == {"id": added.id, "cert": cert.decode()}


def test_one_signing_certificate_per_mesh(manager: ResourceManager) -> None:
    provided_ca.add_signing_cert(manager.store, "demo", *make_ca())
    with pytest.raises(provided_ca.ProvidedCaFullError) as info:
        provided_ca.add_signing_cert(manager.store, "demo", *make_ca())
    assert str(info.value) == "cannot add more than 1 CA root to provided CA"
    # Another mesh has its own.
    provided_ca.add_signing_cert(manager.store, "other", *make_ca())


def test_an_invalid_upload_stores_nothing(manager: ResourceManager) -> None:
    with pytest.raises(ValidationError) as info:
        provided_ca.add_signing_cert(manager.store, "demo", *make_ca(ca=False))
    assert _causes(info.value) == [("cert", NOT_CA)]
    with pytest.raises(NotFoundError):
        provided_ca.signing_certs(manager.store, "demo")


def test_delete_and_its_guard(manager: ResourceManager) -> None:
    added = provided_ca.add_signing_cert(manager.store, "demo", *make_ca())
    manager.create(_mesh("demo", enabled=True))
    with pytest.raises(ValidationError) as info:
        provided_ca.delete_signing_cert(manager.store, "demo", added.id)
    assert info.value.details == (
        "Cannot delete signing certificate when the mTLS in the mesh is active and type of CA "
        "is Provided"
    )
    assert info.value.violations == []
    with pytest.raises(ValidationError):
        provided_ca.delete_ca(manager.store, "demo")
    manager.upsert(_mesh("demo", enabled=False))
    with pytest.raises(NotFoundError):
        provided_ca.delete_signing_cert(manager.store, "demo", "no-such-id")
    provided_ca.delete_signing_cert(manager.store, "demo", added.id)
    assert provided_ca.signing_certs(manager.store, "demo") == []
    provided_ca.delete_ca(manager.store, "demo")
    with pytest.raises(NotFoundError):
        provided_ca.delete_ca(manager.store, "demo")


def test_a_mesh_needs_its_signing_certificate_first(manager: ResourceManager) -> None:
    for enabled in (False, True):
        with pytest.raises(ValidationError) as info:
            manager.create(_mesh("demo", enabled=enabled))
        assert _causes(info.value) == [("mtls.ca.provided", NO_SIGNING_CERT)]
    manager.create(_mesh("demo", enabled=False, kind="builtin"))
    with pytest.raises(ValidationError) as info:  # switching to it, too
        manager.upsert(_mesh("demo", enabled=False))
    assert _causes(info.value) == [("mtls.ca.provided", NO_SIGNING_CERT)]
    provided_ca.add_signing_cert(manager.store, "demo", *make_ca())
    manager.upsert(_mesh("demo", enabled=True))
    assert manager.get(MESH, "demo", "demo").spec.ca_kind == "provided"


def test_changing_the_ca_while_mtls_is_on_is_forbidden(manager: ResourceManager) -> None:
    provided_ca.add_signing_cert(manager.store, "demo", *make_ca())
    manager.create(_mesh("demo", enabled=True, kind="builtin"))
    with pytest.raises(ValidationError) as info:
        manager.upsert(_mesh("demo", enabled=True))
    assert _causes(info.value) == [
        (
            "mtls.ca",
            "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change "
            "the CA",
        )
    ]


def test_deleting_the_mesh_deletes_its_provided_ca(manager: ResourceManager) -> None:
    provided_ca.add_signing_cert(manager.store, "demo", *make_ca())
    manager.create(_mesh("demo", enabled=True))
    manager.delete(MESH, "demo", "demo")
    with pytest.raises(NotFoundError):
        provided_ca.signing_certs(manager.store, "demo")


# --- signing --------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_workload_certificates_are_signed_by_the_provided_ca(
    manager: ResourceManager, key_type: str
) -> None:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if key_type == "rsa"
        else None
    )
    cert, ca_key = make_ca(key=key)
    provided_ca.add_signing_cert(manager.store, "demo", cert, ca_key)
    manager.create(_mesh("demo", enabled=True))
    authority = ca.InProcessCA(manager.store)
    assert authority.mesh_ca("demo") == cert  # the trust bundle is the uploaded certificate
    workload_key = ca.new_private_key()
    chain = authority.sign("demo", "backend", ca.workload_csr(workload_key, "demo", "backend"), 600)
    leaf = ca.check_workload_chain(chain, workload_key.public_key(), "demo", "backend", cert)
    root = x509.load_pem_x509_certificate(cert)
    assert leaf.issuer == root.subject
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    # No builtin CA was made for it.
    with pytest.raises(NotFoundError):
        manager.store.get(SECRET, "demo", "builtinca.demo")


def test_signing_is_refused_without_a_usable_provided_ca(
    manager: ResourceManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = provided_ca.add_signing_cert(manager.store, "demo", *make_ca())
    manager.create(_mesh("demo", enabled=False))
    provided_ca.delete_signing_cert(manager.store, "demo", added.id)
    with pytest.raises(ca.UnsupportedCaError, match="no signing certificate"):
        ca.mesh_ca_bundle(manager.store, "demo")
    # A CA that expired after its upload signs nothing.
    now = dt.datetime.now(dt.UTC)
    short = make_ca(not_after=now + dt.timedelta(seconds=2))
    provided_ca.add_signing_cert(manager.store, "demo", *short)
    workload = ca.new_private_key()
    csr = ca.workload_csr(workload, "demo", "web")
    chain = ca.sign_workload(manager.store, "demo", "web", csr, 3600)
    leaf = x509.load_pem_x509_certificate(chain)
    assert leaf.not_valid_after_utc <= now + dt.timedelta(seconds=2)  # capped by the CA's life
    monkeypatch.setattr(ca, "_now", lambda: now + dt.timedelta(seconds=3))
    with pytest.raises(ca.UnsupportedCaError, match="not valid now"):
        ca.sign_workload(manager.store, "demo", "web", csr, 3600)


def test_the_key_pem_is_the_uploaders_format(manager: ResourceManager) -> None:
    """PKCS#1 / SEC1 (`BEGIN RSA/EC PRIVATE KEY`) as openssl writes them, and PKCS#8."""
    key = ec.generate_private_key(ec.SECP384R1())
    cert, traditional = make_ca(key=key)
    assert traditional == key_pem(key) and b"BEGIN EC PRIVATE KEY" in traditional
    assert provided_ca.validate_pair(cert, ca.private_key_pem(key)) == []
