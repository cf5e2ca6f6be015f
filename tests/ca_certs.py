"""Certificates an operator might upload as a provided CA (kuma/provided_ca.py): a good root, and
each way one can be wrong. `make_ca()` returns PEM bytes (cert, key)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(
    common_name: str = "provided-root",
    *,
    key: PrivateKey | None = None,
    ca: bool = True,
    cert_sign: bool = True,
    key_usage: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    serial: int = 4242,
) -> tuple[bytes, bytes]:
    """A CA certificate and its key; keyword arguments break one rule at a time."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Operator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not cert_sign,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=cert_sign,
                crl_sign=cert_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    return cert_pem(cert), key_pem(key)


def write_ca(directory: Path, **kwargs: object) -> tuple[Path, Path]:
    """`make_ca(**kwargs)` written to `ca.crt` / `ca.key` in `directory`."""
    cert, key = make_ca(**kwargs)  # type: ignore[arg-type]
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    key_path.chmod(0o600)
    return cert_path, key_path
