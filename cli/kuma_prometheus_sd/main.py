"""kuma-prometheus-sd: Prometheus service discovery adapter for native integration with Kuma
(Kuma 0.3.2, spec §12.3). `run` reads the API's `/catalog`, subscribes to the Monitoring
Assignment Discovery Service it names, and keeps a Prometheus `file_sd` file current."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

import click

from cli.kuma_prometheus_sd.file_sd import FileSdWriter, SdError, try_write_to_dir
from kuma.edge.clitools import CONTEXT, log_level_option, persist_log_level, version_command

log = logging.getLogger("kuma-prometheus-sd.run")
_option = functools.partial(click.option, show_envvar=True)


@click.group(context_settings=CONTEXT)
@log_level_option("info")
def cli() -> None:
    """Prometheus service discovery adapter for native integration with Kuma."""


def validate(cp_address: str, name: str, output_file: str) -> None:
    """Kuma's configuration checks, in its words."""
    control_plane: list[str] = []
    if not cp_address:
        control_plane.append(".URL must be non-empty")
    try:
        absolute = bool(urlsplit(cp_address).scheme)
    except ValueError:
        absolute = False
    if not absolute:
        control_plane.append(".URL must be a valid absolute URI")
    errors = [f".ControlPlane is not valid: .ApiServer is not valid: {e}" for e in control_plane]
    if not name:
        errors.append(
            ".MonitoringAssignment is not valid: .Client is not valid: .Name must be non-empty"
        )
    if not output_file:
        errors.append(".Prometheus is not valid: .OutputFile must be non-empty")
    if errors:
        raise SdError("Invalid configuration: " + "; ".join(errors))


@cli.command(context_settings={**CONTEXT, "show_default": True})
@_option(
    "--cp-address",
    envvar="KUMA_CONTROL_PLANE_API_SERVER_URL",
    default="http://localhost:5681",
    help="URL of the Control Plane API Server",
)
@_option(
    "--name",
    envvar="KUMA_MONITORING_ASSIGNMENT_CLIENT_NAME",
    default="kuma_sd",
    help="Name to use to identify itself to the Monitoring Assignment server.",
)
@_option(
    "--output-file",
    envvar="KUMA_PROMETHEUS_OUTPUT_FILE",
    default="kuma.file_sd.json",
    help="Path to an output file with a list of scrape targets. The same file path must be used "
    "on Prometheus side in a configuration of `file_sd` discovery mechanism.",
)
@_option(
    "--ca-cert-file",
    envvar="KUMA_CONTROL_PLANE_CA_CERT_FILE",
    default="",
    help="CA certificate (PEM) that the control plane's TLS certificate must chain to "
    "(`kuma-cp tls-cert` prints a generated one)",
)
@_option(
    "--admin-token-file",
    envvar="KUMA_CONTROL_PLANE_ADMIN_TOKEN_FILE",
    default="",
    help="file holding the control plane's admin token (`kuma-cp admin-token`): needed from "
    "other hosts, or where the control plane does not trust its own host",
)
def run(
    cp_address: str, name: str, output_file: str, ca_cert_file: str, admin_token_file: str
) -> None:
    """Launch Kuma Prometheus SD adapter."""
    try:
        _run(cp_address, name, output_file, ca_cert_file, admin_token_file)
    except SdError as exc:
        raise click.ClickException(str(exc)) from None


def _run(
    cp_address: str, name: str, output_file: str, ca_cert_file: str, admin_token_file: str
) -> None:
    from cli.kuma_prometheus_sd.discovery import (  # grpc only for `run`
        Discoverer,
        Endpoint,
        fetch_catalog,
        read_secret_file,
    )

    validate(cp_address, name, output_file)
    effective = {
        "controlPlane": {"apiServer": {"url": cp_address}, "caCertFile": ca_cert_file},
        "monitoringAssignment": {"client": {"name": name, "adminTokenFile": admin_token_file}},
        "prometheus": {"outputFile": output_file},
    }
    log.info("effective configuration %s", json.dumps(effective, separators=(",", ":")))
    output_dir = os.path.dirname(output_file)
    try:
        try_write_to_dir(output_dir)
    except SdError as exc:
        raise SdError(f'unable to write to directory "{output_dir}": {exc}') from None
    if ca_cert_file and not os.access(ca_cert_file, os.R_OK):
        raise SdError(f"could not read the CA certificate file {ca_cert_file}")
    if admin_token_file:
        read_secret_file(admin_token_file, "admin token")  # fail now, not at every reconnect
    mads_url = fetch_catalog(cp_address, ca_cert_file)
    log.info("fetched Catalog of Kuma APIs: monitoringAssignment.url %s", mads_url)
    endpoint = Endpoint(mads_url, ca_cert_file, admin_token_file)
    discoverer = Discoverer(endpoint, name, FileSdWriter(output_file))
    asyncio.run(_until_signal(discoverer.run()))


async def _until_signal(work: Coroutine[Any, Any, None]) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped")


cli.add_command(version_command())
persist_log_level(cli)
