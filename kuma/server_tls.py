"""The control plane's own TLS certificate: what xDS (5678), SDS (5677) and bootstrap (5682)
present, and what kuma-dp verifies with `--ca-cert-file`.

One certificate serves every replica, so that a sidecar can trust it once:
- `general.tlsCertFile` / `general.tlsKeyFile`: the operator's (any chain; the CA is theirs);
- else `sdsServer.tlsCertFile` / `tlsKeyFile` (Kuma 0.3's SDS-only setting), for compatibility;
- else a self-signed EC P-256 certificate generated at first start and stored as a Secret in the
  reserved mesh `kuma.system`, the first starter winning as for the token signing key. It names
  localhost, the loopback addresses, `general.advertisedHostname` and `general.tlsServerNames`
  as they were at that first start; a process whose names it does not cover says so.

The self-signed certificate is its own CA: `kuma-cp tls-cert` prints it for `--ca-cert-file`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuma import ca as kca
from kuma import system_secrets
from kuma.config import KumaCpConfig
from kuma.errors import ConfigError
from kuma.store.base import ResourceStore

log = logging.getLogger("kuma.tls")

SECRET_MESH = system_secrets.MESH
SECRET_NAME = "control-plane-tls"
VALIDITY = dt.timedelta(days=10 * 365)


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    cert_pem: bytes  # the chain, leaf first: what clients are shown and (self-signed) trust
    key_pem: bytes


def server_names(cfg: KumaCpConfig) -> list[str]:
    """The names sidecars dial this control plane by, as far as its config knows."""
    general = cfg.general
    names = [
        "localhost",
        "127.0.0.1",
        "::1",
        general.advertised_hostname,
        *general.tls_server_names,
    ]
    return list(dict.fromkeys(n for n in names if n))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def self_signed(hostnames: list[str], validity: dt.timedelta = VALIDITY) -> ServerCertificate:
    """A self-signed server certificate (EC P-256) valid for `hostnames`, DNS names or IPs."""
    key = kca.new_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = dt.datetime.now(dt.UTC)
    sans = [_general_name(h) for h in dict.fromkeys(hostnames)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ServerCertificate(
        cert.public_bytes(serialization.Encoding.PEM), kca.private_key_pem(key)
    )


def covered_names(cert_pem: bytes) -> set[str]:
    """The DNS names and IP addresses (as text) the leaf of `cert_pem` is valid for."""
    leaf = x509.load_pem_x509_certificate(cert_pem)
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(sans.get_values_for_type(x509.DNSName)) | ips


def _split(data: bytes) -> ServerCertificate:
    """The stored form: the certificate PEM followed by the key PEM."""
    marker = data.find(b"-----BEGIN PRIVATE KEY-----")
    if marker < 0:
        raise ValueError("the stored control-plane certificate has no private key")
    return ServerCertificate(data[:marker], data[marker:])


def stored(store: ResourceStore) -> ServerCertificate | None:
    data = system_secrets.read(store, SECRET_NAME)
    return _split(data) if data is not None else None


def ensure_stored(store: ResourceStore, names: list[str]) -> ServerCertificate:
    """The stored certificate; generated for `names` and stored first when there is none."""

    def make() -> bytes:
        made = self_signed(names)
        log.info("generated the control plane's TLS certificate for %s", ", ".join(names))
        return made.cert_pem + made.key_pem

    return _split(system_secrets.ensure(store, SECRET_NAME, make))


def _read_pair(cert_file: str, key_file: str) -> ServerCertificate:
    try:
        return ServerCertificate(Path(cert_file).read_bytes(), Path(key_file).read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the control plane's TLS certificate: {exc}") from exc


def load(cfg: KumaCpConfig, store: ResourceStore) -> ServerCertificate:
    """This process's server certificate (blocking: the store may be Postgres)."""
    general, sds = cfg.general, cfg.sds_server
    if general.tls_cert_file:
        return _read_pair(general.tls_cert_file, general.tls_key_file)
    if sds.tls_cert_file and sds.tls_key_file:
        return _read_pair(sds.tls_cert_file, sds.tls_key_file)
    names = server_names(cfg)
    pair = ensure_stored(store, names)
    missing = [n for n in names if n not in covered_names(pair.cert_pem)]
    if missing:
        log.warning(
            "the stored control-plane certificate does not name %s: sidecars that dial those "
            "names will refuse it. Give general.tlsCertFile/tlsKeyFile, or delete the Secret "
            "%s/%s and restart to generate one for general.tlsServerNames",
            ", ".join(missing),
            SECRET_MESH,
            SECRET_NAME,
        )
    return pair
