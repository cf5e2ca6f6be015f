"""`kumactl manage ca provided certificates add|list|delete` (spec §6.9) against a real
`kuma-cp run`: Kuma's output and violation messages, and `kumactl get meshes` printing
`provided` in its CA column."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cli.kumactl.cmd_manage import go_time
from tests.ca_certs import write_ca
from tests.kumactl.conftest import ControlPlane, Kumactl, use

NO_SIGNING_CERT = (
    "There is no signing certificate in provided CA for a given mesh. Add certificate via "
    "'kumactl manage ca provided certificates add' command."
)


def _mesh_yaml(name: str, enabled: bool, kind: str = "provided") -> str:
    return f"""type: Mesh
name: {name}
mtls:
  enabled: {"true" if enabled else "false"}
  ca:
    {kind}: {{}}
"""


def test_add_list_delete_and_get_meshes(kumactl: Kumactl, shared_cp: ControlPlane, tmp_path: Path):
    use(kumactl, shared_cp)
    mesh = f"pca-{uuid.uuid4().hex[:6]}"
    # A Mesh with the provided CA needs its certificate first.
    refused = kumactl("apply", "-f", "-", input=_mesh_yaml(mesh, True))
    assert refused.exit_code == 1
    assert f"* mtls.ca.provided: {NO_SIGNING_CERT}" in refused.stderr

    cert_file, key_file = write_ca(tmp_path, common_name="operator-root", serial=31337)
    added = kumactl(
        "--mesh", mesh, "manage", "ca", "provided", "certificates", "add",
        "--key-file", str(key_file), "--cert-file", str(cert_file),
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert added.stdout.startswith('added certificate "') and added.stdout.endswith('"')
    cert_id = added.stdout.split('"')[1]

    listed = kumactl("--mesh", mesh, "manage", "ca", "provided", "certificates", "list")
    assert listed.exit_code == 0, listed.stderr
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "ID", "COMMON", "NAME", "SERIAL", "NUMBER", "NOT", "VALID", "BEFORE", "NOT", "VALID",
        "AFTER", "SHA-1", "FINGERPRINT",
    ]  # fmt: skip
    before, after = go_time(cert.not_valid_before_utc), go_time(cert.not_valid_after_utc)
    assert before.endswith(" +0000 UTC") and len(before) == len("2019-12-04 17:34:55 +0000 UTC")
    fingerprint = hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest()
    assert re.split(" {3,}", row) == [cert_id, "operator-root", "31337", before, after, fingerprint]

    # Kuma's messages: a second certificate, mTLS on, deleting the one in use, changing the CA.
    second = kumactl(
        "--mesh", mesh, "manage", "ca", "provided", "certificates", "add",
        "--key-file", str(key_file), "--cert-file", str(cert_file),
    )  # fmt: skip
    assert second.exit_code == 1
    assert second.stderr == (
        "Error: Could not add signing cert (cannot add more than 1 CA root to provided CA)\n"
    )
    assert kumactl("apply", "-f", "-", input=_mesh_yaml(mesh, True)).exit_code == 0
    in_use = kumactl(
        "--mesh", mesh, "manage", "ca", "provided", "certificates", "delete", "--id", cert_id
    )
    assert in_use.exit_code == 1
    assert in_use.stderr == (
        "Error: could not delete signing certificate: Could not delete signing cert (Cannot "
        "delete signing certificate when the mTLS in the mesh is active and type of CA is "
        "Provided)\n"
    )
    changed = kumactl("apply", "-f", "-", input=_mesh_yaml(mesh, True, "builtin"))
    assert changed.exit_code == 1
    assert (
        "* mtls.ca: Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then "
        "change the CA" in changed.stderr
    )

    # `get meshes` keeps printing `provided` in the CA column.
    meshes = kumactl("get", "meshes")
    assert meshes.exit_code == 0
    assert [mesh, "on", "provided", "off"] in [line.split() for line in meshes.stdout.splitlines()]

    assert kumactl("apply", "-f", "-", input=_mesh_yaml(mesh, False)).exit_code == 0
    removed = kumactl(
        "--mesh", mesh, "manage", "ca", "provided", "certificates", "delete", "--id", cert_id
    )
    assert (removed.exit_code, removed.stdout) == (0, f'removed certificate "{cert_id}"')
    empty = kumactl("--mesh", mesh, "manage", "ca", "provided", "certificates", "list")
    assert empty.stdout == (
        "ID   COMMON NAME   SERIAL NUMBER   NOT VALID BEFORE   NOT VALID AFTER   "
        "SHA-1 FINGERPRINT\n"
    )
    deleted = kumactl("--mesh", mesh, "manage", "ca", "provided", "delete")
    assert (deleted.exit_code, deleted.stdout) == (
        0,
        f'deleted certificate authority for mesh "{mesh}"',
    )
    missing = kumactl("--mesh", mesh, "manage", "ca", "provided", "certificates", "list")
    assert missing.stderr == (
        "Error: could not retrieve signing certificates: Could not retrieve signing certs "
        "(Not found)\n"
    )
    kumactl("delete", "mesh", mesh)


def test_certificate_checks_with_kumas_messages(
    kumactl: Kumactl, shared_cp: ControlPlane, tmp_path: Path
):
    use(kumactl, shared_cp)
    cert_file, key_file = write_ca(tmp_path, ca=False, cert_sign=False)
    result = kumactl(
        "--mesh", f"pca-{uuid.uuid4().hex[:6]}", "manage", "ca", "provided", "certificates",
        "add", "--key-file", str(key_file), "--cert-file", str(cert_file),
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Could not add signing cert (Resource is not valid)\n"
        "* cert: basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic "
        "Constraints)\n"
        "* cert: key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. Key Usage)\n"
    )
    expired_dir = tmp_path / "expired"
    expired_dir.mkdir()
    now = dt.datetime.now(dt.UTC)
    cert_file, key_file = write_ca(
        expired_dir, not_before=now - dt.timedelta(days=9), not_after=now - dt.timedelta(days=1)
    )
    result = kumactl(
        "manage", "ca", "provided", "certificates", "add",
        "--key-file", str(key_file), "--cert-file", str(cert_file),
    )  # fmt: skip
    assert "* cert: certificate has expired (not valid after " in result.stderr


def test_flags_files_and_plaintext(kumactl: Kumactl, stub_server, tmp_path: Path, home: Path):
    url, canned = stub_server
    canned.body = b'{"tagline": "Kuma"}'
    kumactl("config", "control-planes", "add", "--name", "stub", "--address", url)
    add = ["manage", "ca", "provided", "certificates", "add"]
    assert kumactl(*add).stderr == 'Error: required flag(s) "cert-file", "key-file" not set\n'
    delete = ["manage", "ca", "provided", "certificates", "delete"]
    assert kumactl(*delete).stderr == 'Error: required flag(s) "id" not set\n'
    missing = kumactl(*add, "--key-file", "/nonexistent/k", "--cert-file", "/nonexistent/c")
    assert missing.stderr == (
        "Error: could not read content of the certificate file: open /nonexistent/c: "
        "no such file or directory\n"
    )
    cert_file, key_file = write_ca(tmp_path)
    canned.content_type, canned.body = "application/json", b'{"id": "id-13456", "cert": ""}'
    ok = kumactl("--mesh", "demo", *add, "--key-file", str(key_file), "--cert-file", str(cert_file))
    assert (ok.exit_code, ok.stdout) == (0, 'added certificate "id-13456"')
    method, path, headers, body = canned.seen[-1]
    assert (method, path, headers["Content-Type"]) == (
        "POST",
        "/meshes/demo/ca/provided/certificates",
        "application/json",
    )
    assert json.loads(body) == {"cert": cert_file.read_text(), "key": key_file.read_text()}

    # Another host over plain HTTP: the key is not sent at all.
    seen = len(canned.seen)
    config = home / ".kumactl" / "config"
    config.write_text(config.read_text().replace(url, "http://cp.example:5681"))
    refused = kumactl(*add, "--key-file", str(key_file), "--cert-file", str(cert_file))
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: refusing to send a CA private key in plaintext to http://cp.example:5681"
    )
    assert len(canned.seen) == seen
