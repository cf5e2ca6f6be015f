"""`kumactl config view` and `kumactl config control-planes add|list|switch|remove` (spec §6.7)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from cli.kumactl.app import App, pass_app
from cli.kumactl.client import ApiClient
from cli.kumactl.config import ADD_HINT, Context, ControlPlane
from cli.kumactl.errors import CliError, TransportError
from cli.kumactl.table import render_table

CHECK_TIMEOUT = 5.0  # spec §6.1


def require(**flags: str | None) -> None:
    """Cobra's message for missing required flags, names sorted."""
    missing = sorted(name.replace("_", "-") for name, value in flags.items() if value is None)
    if missing:
        quoted = ", ".join(f'"{m}"' for m in missing)
        raise CliError(f"required flag(s) {quoted} not set")


def check_api_server(url: str, token: str) -> None:
    """`GET <url>` must answer 200 with `"tagline": "Kuma"` (spec §6.7 step 3)."""
    client = ApiClient(url, token, CHECK_TIMEOUT)
    try:
        response = client.request("GET", url)
    except TransportError as exc:
        raise CliError(
            f"could not connect to the Control Plane API Server: {exc.message}"
        ) from None
    if response.status_code != 200:
        raise CliError("Control Plane API Server is not responding")
    try:
        body = response.json()
    except ValueError as exc:
        raise CliError(
            "could not unmarshal body from the Control Plane API Server. "
            f"Provided address is not valid Kuma Control Plane API Server: {exc}"
        ) from None
    if not isinstance(body, dict) or body.get("tagline") != "Kuma":
        raise CliError("provided address is not valid Kuma Control Plane API Server")


@click.group(name="config")
def config() -> None:
    """Manage kumactl config."""


@config.command(name="view")
@pass_app
def view(app: App) -> None:
    """Show kumactl config."""
    click.echo(app.config.to_yaml())


@config.group(name="control-planes")
def control_planes() -> None:
    """Manage known Control Planes."""


@control_planes.command(name="list")
@pass_app
def list_(app: App) -> None:
    """List known Control Planes."""
    current = app.config.context(app.config.current_context)
    active = current.control_plane if current else None
    rows: Sequence[Sequence[str]] = [
        ["*" if cp.name == active else "", cp.name, cp.url] for cp in app.config.control_planes
    ]
    click.echo(render_table(["ACTIVE", "NAME", "ADDRESS"], rows), nl=False)


@control_planes.command(name="add")
@click.option("--name", default=None, help="reference name for the Control Plane (required)")
@click.option("--address", default=None, help="URL of the Control Plane API Server (required)")
@click.option("--overwrite", is_flag=True, help="overwrite an existing Control Plane of that name")
@click.option("--admin-client-cert", default="", help="path to the admin API client certificate")
@click.option("--admin-client-key", default="", help="path to the admin API client key")
@click.option("--auth-token", default="", help="the API's admin token, sent as a Bearer token")
@pass_app
def add(
    app: App,
    name: str | None,
    address: str | None,
    overwrite: bool,
    admin_client_cert: str,
    admin_client_key: str,
    auth_token: str,
) -> None:
    """Add a Control Plane and make it active."""
    require(address=address, name=name)
    assert name is not None and address is not None
    cp = ControlPlane(name, address)
    problems = cp.violations()
    if problems:
        raise CliError("Control Plane configuration is not valid: " + "; ".join(problems))
    check_api_server(address, auth_token)
    ctx = Context(
        name,
        name,
        admin_client_cert=admin_client_cert,
        admin_client_key=admin_client_key,
        auth_token=auth_token,
    )
    app.config.add(cp, ctx, overwrite)
    app.save()
    click.echo(f'added Control Plane "{name}"')
    click.echo(f'switched active Control Plane to "{name}"')


@control_planes.command(name="remove")
@click.option("--name", default=None, help="reference name for the Control Plane (required)")
@pass_app
def remove(app: App, name: str | None) -> None:
    """Remove a Control Plane."""
    require(name=name)
    assert name is not None
    app.config.remove(name)
    app.save()
    click.echo(f'removed Control Plane "{name}"')
    if app.config.current_context:
        click.echo(f'switched active Control Plane to "{app.config.current_context}"')
    else:
        click.echo(f"there is no active Control Plane left. {ADD_HINT}")


@control_planes.command(name="switch")
@click.option("--name", default=None, help="reference name for the Control Plane (required)")
@pass_app
def switch(app: App, name: str | None) -> None:
    """Switch the active Control Plane."""
    require(name=name)
    assert name is not None
    app.config.switch(name)
    app.save()
    click.echo(f'switched active Control Plane to "{name}"')
