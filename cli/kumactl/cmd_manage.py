"""`kumactl manage ca provided certificates add|list|delete` and `kumactl manage ca provided
delete` (spec §6.9): the provided CA of `--mesh`, through the API (Kuma: its admin server).

The private key is sent only where it cannot cross hosts in plaintext: to an https:// control
plane, or an http:// one on this host (localhost, a loopback address). The API refuses any other
upload too (docs/security.md); kumactl refuses first, so that the key is never sent at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cli.kumactl.app import App, pass_app
from cli.kumactl.cmd_config import require
from cli.kumactl.errors import ApiError, CliError, HttpError
from cli.kumactl.table import render_table
from kuma.netutil import is_local_name

HEADER = [
    "ID",
    "COMMON NAME",
    "SERIAL NUMBER",
    "NOT VALID BEFORE",
    "NOT VALID AFTER",
    "SHA-1 FINGERPRINT",
]


@contextmanager
def wrapped(what: str) -> Iterator[None]:
    """Go's `errors.Wrap(err, what)`: `<what>: <error>`, for the API's errors too."""
    try:
        yield
    except CliError as exc:
        raise CliError(f"{what}: {exc.message}") from None


def _certificates_path(mesh: str) -> str:
    return f"/meshes/{quote(mesh, safe='')}/ca/provided/certificates"


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise CliError(
            f"could not read content of the {what} file: open {path}: {reason}"
        ) from None
    except UnicodeDecodeError:
        raise CliError(f"could not read content of the {what} file: {path} is not PEM") from None


def _may_carry_a_key(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or is_local_name(parts.hostname)


def go_time(moment: dt.datetime) -> str:
    """Go's `time.Time.String()` of a certificate date (UTC): `2019-12-04 17:34:55 +0000 UTC`."""
    moment = moment.astimezone(dt.UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return f"{text} +0000 UTC"


def _row(item: Any) -> list[str]:
    cert_id, pem = str(item.get("id", "")), str(item.get("cert", ""))
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise CliError(f"could not parse certificate: {exc}") from None
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    der = cert.public_bytes(Encoding.DER)
    return [
        cert_id,
        str(names[0].value) if names else "",
        str(cert.serial_number),
        go_time(cert.not_valid_before_utc),
        go_time(cert.not_valid_after_utc),
        hashlib.sha1(der, usedforsecurity=False).hexdigest(),
    ]


@click.group(name="manage")
def manage() -> None:
    """Manage certificate authorities etc."""


@manage.group(name="ca")
def ca() -> None:
    """Manage certificate authorities."""


@ca.group(name="provided")
def provided() -> None:
    """Manage "provided" certificate authorities."""


@provided.command(name="delete")
@pass_app
def delete_ca(app: App) -> None:
    """Delete "provided" certificate authority."""
    client = app.client()
    with wrapped("could not delete certificate authority"):
        client.call("DELETE", f"/meshes/{quote(app.mesh, safe='')}/ca/provided")
    click.echo(f'deleted certificate authority for mesh "{app.mesh}"', nl=False)


@provided.group(name="certificates")
def certificates() -> None:
    """Manage signing certificates used by a "provided" certificate authority."""


@certificates.command(name="add")
@click.option("--key-file", default=None, help="path to a file with a private key")
@click.option("--cert-file", default=None, help="path to a file with a CA certificate")
@pass_app
def add(app: App, key_file: str | None, cert_file: str | None) -> None:
    """Add signing certificate."""
    require(key_file=key_file, cert_file=cert_file)
    assert key_file is not None and cert_file is not None
    cert = _read(cert_file, "certificate")
    key = _read(key_file, "key")
    client = app.client()
    if not _may_carry_a_key(client.base_url):
        raise CliError(
            f"refusing to send a CA private key in plaintext to {client.base_url.rstrip('/')}: "
            "use an https:// address for the Control Plane, or run this command on its host"
        )
    try:
        response = client.call(
            "POST", _certificates_path(app.mesh), json={"cert": cert, "key": key}
        )
    except (ApiError, HttpError) as exc:
        if exc.status == 404:  # an older control plane, without this API
            raise CliError(
                f"the Control Plane at {client.base_url.rstrip('/')} does not serve the provided "
                "CA API (404 Not Found)"
            ) from None
        raise
    body = response.json()
    click.echo(
        f'added certificate "{body.get("id", "") if isinstance(body, dict) else ""}"', nl=False
    )


@certificates.command(name="list")
@pass_app
def list_(app: App) -> None:
    """List signing certificates."""
    client = app.client()
    with wrapped("could not retrieve signing certificates"):
        body = client.get_json(_certificates_path(app.mesh))
        if not isinstance(body, list):
            raise HttpError(200, "the signing certificates are not a JSON list")
    with wrapped("could not print certificates"):
        rows = [_row(item) for item in body if isinstance(item, dict)]
    click.echo(render_table(HEADER, rows), nl=False)


@certificates.command(name="delete")
@click.option("--id", "cert_id", default=None, help="id of the certificate")
@pass_app
def delete(app: App, cert_id: str | None) -> None:
    """Delete signing certificate."""
    require(id=cert_id)
    assert cert_id is not None
    client = app.client()
    with wrapped("could not delete signing certificate"):
        client.call("DELETE", f"{_certificates_path(app.mesh)}/{quote(cert_id, safe='')}")
    click.echo(f'removed certificate "{cert_id}"', nl=False)
