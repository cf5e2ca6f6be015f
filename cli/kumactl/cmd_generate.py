"""`kumactl generate dataplane-token` and `kumactl generate tls-certificate` (spec §6.8)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import cast

import click

from cli.kumactl import tls
from cli.kumactl.app import App, pass_app
from cli.kumactl.client import SHORT_TIMEOUT
from cli.kumactl.errors import ApiError, CliError, HttpError, failing
from kuma.durations import parse_duration

TOKEN_FAILED = "failed to generate a dataplane token"


@click.group(name="generate")
def generate() -> None:
    """Generate resources, tokens, etc."""


@generate.command(name="dataplane-token")
@click.option("--dataplane", default="", help="name of the Dataplane")
@click.option(
    "--valid-for",
    default="",
    help='how long the token is valid, e.g. "24h", "720h" (default: the control plane\'s '
    "adminServer.apis.dataplaneToken.defaultValidFor, one year unless configured)",
)
@pass_app
def dataplane_token(app: App, dataplane: str, valid_for: str) -> None:
    """Generate a Dataplane token (POST <api>/tokens); printed without a trailing newline."""
    body = {"mesh": app.mesh, "name": dataplane}
    if valid_for:
        try:
            if parse_duration(valid_for) < timedelta(seconds=1):
                raise ValueError("not positive")
        except ValueError:
            raise CliError(
                f'invalid argument "{valid_for}" for "--valid-for" flag: expected a positive '
                'duration such as "24h"'
            ) from None
        body["validFor"] = valid_for
    client = app.client(timeout=SHORT_TIMEOUT)
    with failing(TOKEN_FAILED):
        try:
            response = client.call("POST", "/tokens", json=body)
        except (ApiError, HttpError) as exc:
            if exc.status == 404:
                raise CliError(
                    f"the Control Plane at {client.base_url.rstrip('/')} does not serve dataplane "
                    "tokens (POST /tokens answered 404 Not Found)"
                ) from None
            raise
    click.echo(response.text, nl=False)


def _write(path: str, data: bytes, mode: int) -> None:
    if os.path.exists(path):
        os.remove(path)  # a previous key is read-only (0400)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


@generate.command(name="tls-certificate")
@click.option(
    "--type", "kind", default="", help='type of the certificate: one of "client", "server"'
)
@click.option("--cp-hostname", "hostnames", multiple=True, help="DNS name of the control plane")
@click.option("--key-file", default="key.pem", show_default=True, help="path to a file with a key")
@click.option("--cert-file", default="cert.pem", show_default=True, help="path to a certificate")
def tls_certificate(kind: str, hostnames: tuple[str, ...], key_file: str, cert_file: str) -> None:
    """Generate a TLS certificate."""
    if kind not in ("client", "server"):
        raise CliError('--type has to be either "client" or "server"')
    if kind == "client" and hostnames:
        raise CliError('--cp-hostname cannot be used with "client" type')
    if kind == "server" and not hostnames:
        raise CliError('--cp-hostname has to be specified with "server" type')
    pair = tls.self_signed("kuma", cast(tls.CertKind, kind), [*hostnames, "localhost"])
    try:
        _write(key_file, pair.key_pem, 0o400)
        _write(cert_file, pair.cert_pem, 0o644)
    except OSError as exc:
        raise CliError(f"could not write the certificate: {exc}") from None
    click.echo("Certificates generated")
    click.echo(f"Key was saved in: {key_file}")
    click.echo(f"Cert was saved in: {cert_file}")
