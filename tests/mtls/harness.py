"""Real Envoys configured by the xDS service, with node metadata and a dataplane token, and a TCP
echo workload that keeps connections open (the HTTP test backend closes after each answer)."""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kuma.resources import wire
from kuma.wiring import Core
from tests.xds_ads.harness import envoy_path, free_port, wait_for

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
DRAIN_TIME_S = 2  # what the tests give Envoy's --drain-time-s (the bound on old connections)


def apply(core: Core, text: str) -> None:
    for doc in wire.parse_yaml_documents(text):
        core.manager.upsert(wire.from_json(doc))


def set_mtls(core: Core, enabled: bool, mesh: str = "default") -> None:
    apply(core, f"type: Mesh\nname: {mesh}\nmtls:\n  enabled: {str(enabled).lower()}\n")


class Echo:
    """A TCP server answering each chunk with `{name}:{chunk}`."""

    def __init__(self, name: str) -> None:
        prefix = name.encode() + b":"

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                while True:
                    try:
                        data = self.request.recv(4096)
                    except OSError:
                        return
                    if not data:
                        return
                    self.request.sendall(prefix + data)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def talk(port: int, message: bytes = b"hi", timeout: float = 2.0) -> bytes:
    """One request on a new connection: the answer, or b"" when the connection was refused,
    reset or closed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(message)
            return s.recv(4096)
    except OSError:
        return b""


class Conversation:
    """A long-lived connection: `say` returns the answer, or b"" once it is closed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)

    def say(self, message: bytes = b"hi") -> bytes:
        try:
            self.sock.sendall(message)
            return self.sock.recv(4096)
        except OSError:
            return b""

    def close(self) -> None:
        self.sock.close()


class EnvoyProcess:
    """A real Envoy started from the bootstrap `build(admin_port, workdir)` returns, with the
    admin-API readers the tests use."""

    def __init__(self, build: Callable[[int, Path], dict[str, Any]]) -> None:
        self.admin_port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="envoy-mtls-")
        bootstrap = build(self.admin_port, Path(self.dir.name))
        path = Path(self.dir.name) / "bootstrap.yaml"
        path.write_text(yaml.safe_dump(bootstrap))
        self.log = Path(self.dir.name) / "envoy.log"
        self.proc = subprocess.Popen(
            [
                envoy_path(),
                "-c",
                str(path),
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--drain-time-s",
                str(DRAIN_TIME_S),
                "-l",
                "info",
                "--log-path",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.admin("/ready") is not None, 15, "Envoy admin")

    def admin(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.admin_port}{path}", timeout=2
            ) as r:
                return r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.read().decode()
        except OSError:
            return None

    def certs(self) -> list[dict[str, Any]]:
        """The TLS contexts of Envoy's `/certs` (each with `ca_cert` and `cert_chain`)."""
        return list(json.loads(self.admin("/certs") or "{}").get("certificates", []))

    def identities(self) -> set[tuple[str, str]]:
        """(SPIFFE URI, serial) of every certificate Envoy presents."""
        out = set()
        for ctx in self.certs():
            for cert in ctx.get("cert_chain", []):
                for san in cert.get("subject_alt_names", []):
                    if "uri" in san:
                        out.add((san["uri"], cert["serial_number"]))
        return out

    def trusted(self) -> set[str]:
        return {
            san["uri"]
            for ctx in self.certs()
            for cert in ctx.get("ca_cert", [])
            for san in cert.get("subject_alt_names", [])
            if "uri" in san
        }

    def secrets(self) -> dict[str, Any]:
        dump = json.loads(self.admin("/config_dump?resource=dynamic_active_secrets") or "{}")
        return {c["name"]: c for c in dump.get("configs", [])}

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        text = self.log.read_text() if self.log.exists() else ""
        self.dir.cleanup()
        return text


def grpc_cluster(name: str, port: int, transport_socket: dict[str, Any] | None = None) -> dict:
    """A static HTTP/2 cluster to 127.0.0.1:`port` (for Envoy's gRPC clients: ADS, SDS)."""
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [endpoint(port)]}],
        },
    }
    if transport_socket is not None:
        cluster["transport_socket"] = transport_socket
    return cluster


def endpoint(port: int) -> dict[str, Any]:
    return {
        "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
    }


def admin(port: int) -> dict[str, Any]:
    return {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}


class Envoy(EnvoyProcess):
    """An Envoy for Dataplane `name` of `mesh`, with kuma-dp's node metadata; the token goes in
    a file named by `dataplaneTokenPath`, or (header=True) in the ADS stream's metadata."""

    def __init__(
        self, mesh: str, name: str, ads_port: int, token: str | None = None, header: bool = False
    ) -> None:
        def build(admin_port: int, workdir: Path) -> dict[str, Any]:
            metadata: dict[str, Any] = {"dataplane.admin.port": str(admin_port)}
            grpc_service: dict[str, Any] = {"envoy_grpc": {"cluster_name": "ads_cluster"}}
            if token is not None and header:
                grpc_service["initial_metadata"] = [{"key": "authorization", "value": token}]
            elif token is not None:
                path = workdir / "token"
                path.write_text(token)
                metadata["dataplaneTokenPath"] = str(path)
            return {
                "node": {"id": f"{mesh}.{name}", "cluster": name, "metadata": metadata},
                "admin": admin(admin_port),
                "dynamic_resources": {
                    "ads_config": {
                        "api_type": "GRPC",
                        "transport_api_version": "V3",
                        "grpc_services": [grpc_service],
                    },
                    "lds_config": {"ads": {}, "resource_api_version": "V3"},
                    "cds_config": {"ads": {}, "resource_api_version": "V3"},
                },
                "static_resources": {"clusters": [grpc_cluster("ads_cluster", ads_port)]},
            }

        super().__init__(build)


def dataplane(
    name: str,
    service: str,
    dp_port: int,
    workload_port: int,
    outbound: str = "",
    mesh: str = "default",
) -> str:
    return f"""
type: Dataplane
mesh: {mesh}
name: {name}
networking:
  inbound:
  - interface: 127.0.0.1:{dp_port}:{workload_port}
    tags:
      service: {service}
{outbound}"""


PERMISSION = """
type: TrafficPermission
mesh: default
name: web-to-backend
sources:
- match:
    service: web
destinations:
- match:
    service: backend
"""


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 3)
