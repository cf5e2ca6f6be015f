"""`kuma-dp run` (spec §10.2): find Envoy, ask the control plane for its bootstrap, serve the
access-log sink, run Envoy until it or kuma-dp is stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from cli.kuma_dp import accesslogs
from cli.kuma_dp.control_plane import TOKEN_REQUIRED, discover, fetch_bootstrap
from cli.kuma_dp.envoy import locate_envoy, supervise
from cli.kuma_dp.errors import DpError
from cli.kuma_dp.settings import DpSettings
from cli.kuma_dp.token_file import TokenCopy

log = logging.getLogger("kuma-dp")
ACCESS_LOG_SINK = "access_log_sink"


def bootstrap_request(
    settings: DpSettings, admin_port: int, token: TokenCopy | None = None, socket: str = ""
) -> dict[str, Any]:
    """Discover the bootstrap server and say what to ask for: the token (checked by the
    bootstrap server; Envoy presents its copy to xDS), the CA to trust for xDS."""
    if settings.bootstrap_server_url:
        url, token_required = settings.bootstrap_server_url.rstrip("/"), False
    else:
        found = discover(settings.cp_address, settings.ca_cert_file)
        url, token_required = found.bootstrap_url, found.token_required
    request: dict[str, Any] = {"url": url, "mesh": settings.mesh, "name": settings.name}
    if admin_port:
        request["adminPort"] = admin_port
    if token is not None:
        request["dataplaneToken"] = token.token
        request["dataplaneTokenPath"] = str(token.path.resolve())
    elif token_required:
        raise DpError(TOKEN_REQUIRED)
    if settings.ca_cert_file:
        request["caCert"] = read_ca(settings.ca_cert_file)
    if socket:
        request["accessLogSocketPath"] = socket
    return request


def read_ca(path: str) -> str:
    try:
        pem = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DpError(f"could not read the CA certificate file {path}: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise DpError(f"{path} holds no PEM certificate")
    return pem


def sink_socket(bootstrap: dict[str, Any]) -> str | None:
    """The unix socket of the bootstrap's `access_log_sink` cluster: the server names it."""
    clusters = (bootstrap.get("staticResources") or {}).get("clusters") or []
    for cluster in clusters:
        if cluster.get("name") == ACCESS_LOG_SINK:
            for group in cluster["loadAssignment"]["endpoints"]:
                for lb in group["lbEndpoints"]:
                    pipe = lb["endpoint"]["address"].get("pipe")
                    if pipe:
                        return str(pipe["path"])
    return None


@contextmanager
def config_dir(path: str) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with private_dir() as tmp:
        yield tmp


@contextmanager
def private_dir() -> Iterator[Path]:
    """A directory of kuma-dp's own (mode 0700), removed with what is in it at exit."""
    with tempfile.TemporaryDirectory(prefix="kuma-dp-") as tmp:
        yield Path(tmp)


def write_bootstrap(directory: Path, text: str) -> Path:
    path = directory / "bootstrap.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


async def _serve_and_run(
    command: list[str], socket_path: str | None, token: TokenCopy | None
) -> int:
    sink = None
    if socket_path:
        try:
            sink = await accesslogs.start_sink(socket_path)
        except (OSError, RuntimeError) as exc:
            raise DpError(
                f"could not start the access log server on {socket_path}: {exc}"
            ) from None
        log.info("access log server listening on unix:%s", socket_path)
    follower = asyncio.create_task(token.follow()) if token is not None else None
    try:
        return await supervise(command)
    finally:
        if follower is not None:
            follower.cancel()
        if sink is not None and socket_path:
            await accesslogs.stop_sink(sink, socket_path)


def run(settings: DpSettings, envoy_args: tuple[str, ...] = ()) -> int:
    """The whole run; returns kuma-dp's exit status. DpError for everything the user must fix."""
    log.info("kuma-dp settings: %s", settings)
    envoy = locate_envoy(settings.binary_path)
    admin_port = settings.admin_ports.first_free() if settings.admin_ports else 0
    with config_dir(settings.config_dir) as directory, private_dir() as sockets:
        token = TokenCopy(settings.token_file, directory) if settings.token_file else None
        # the access-log socket lives in a directory only kuma-dp can enter, and kuma-dp serves
        # (and later removes) no other path than this one, whatever the bootstrap says
        socket = str(sockets / "access-logs.sock")
        request = bootstrap_request(settings, admin_port, token, socket)
        text = fetch_bootstrap(request.pop("url"), request, settings.ca_cert_file)
        try:
            named = sink_socket(yaml.safe_load(text))
        except (yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
            raise DpError(f"the control plane answered an invalid Envoy bootstrap: {exc}") from None
        if named not in (None, socket):
            raise DpError(
                f"the control plane's bootstrap names the access-log socket {named}, "
                f"not {socket} as kuma-dp asked"
            )
        socket_path = named
        path = write_bootstrap(directory, text)
        log.info("wrote Envoy bootstrap to %s (admin port %s)", path, admin_port or "off")
        command = [
            envoy,
            "-c",
            str(path),
            "--drain-time-s",
            str(settings.drain_time_s),
            "--disable-hot-restart",
            *envoy_args,
        ]
        return asyncio.run(_serve_and_run(command, socket_path, token))
