"""`kumactl generate tls-certificate` (spec §6.8)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.kumactl.conftest import Kumactl


def test_server_certificate(kumactl: Kumactl, tmp_path: Path):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    result = kumactl(
        "generate", "tls-certificate", "--type", "server",
        "--cp-hostname", "cp.example", "--cp-hostname", "10.0.0.1",
        "--key-file", str(key), "--cert-file", str(cert),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Certificates generated\nKey was saved in: {key}\nCert was saved in: {cert}\n"
    )
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    assert parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kuma"
    assert parsed.issuer == parsed.subject
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cp.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    usage = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    private = load_pem_private_key(key.read_bytes(), None)
    assert private.key_size == 2048  # type: ignore[union-attr]
    assert private.public_key() == parsed.public_key()

    # a second run replaces the read-only key
    again = kumactl(
        "generate", "tls-certificate", "--type", "server", "--cp-hostname", "x",
        "--key-file", str(key), "--cert-file", str(cert),
    )  # fmt: skip
    assert again.exit_code == 0, again.output


def test_client_certificate_defaults_to_key_pem_and_cert_pem(
    kumactl: Kumactl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    result = kumactl("generate", "tls-certificate", "--type", "client")
    assert result.stdout.endswith("Key was saved in: key.pem\nCert was saved in: cert.pem\n")
    parsed = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    usage = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), '--type has to be either "client" or "server"'),
        (("--type", "peer"), '--type has to be either "client" or "server"'),
        (
            ("--type", "client", "--cp-hostname", "x"),
            '--cp-hostname cannot be used with "client" type',
        ),
        (("--type", "server"), '--cp-hostname has to be specified with "server" type'),
    ],
)
def test_flag_errors(kumactl: Kumactl, args: tuple[str, ...], message: str):
    result = kumactl("generate", "tls-certificate", *args)
    assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n")
