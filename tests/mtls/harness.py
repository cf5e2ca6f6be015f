"""Real Envoys configured by the xDS service, with node metadata and a dataplane token, and a TCP
echo workload that keeps connections open (the HTTP test backend closes after each answer)."""

from __future__ import annotations

import socket
import socketserver
import time
from pathlib import Path
from typing import Any

from kuma.wiring import Core
from tests.apply import apply
from tests.xds_ads.harness import EnvoyProcess, ads_bootstrap, serve_tcp

DRAIN_TIME_S = 2  # what the tests give Envoy's --drain-time-s (the bound on old connections)


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

        self.server = serve_tcp(Handler)
        self.port = self.server.server_address[1]

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


class Envoy(EnvoyProcess):
    """An Envoy for Dataplane `name` of `mesh`, connected to the xDS service `xds` as kuma-dp
    connects it (TLS, node metadata); its token is read from a file by Envoy's file credentials,
    or (header=True) pasted into the stream's initial metadata, as a hand-made bootstrap would."""

    def __init__(
        self, mesh: str, name: str, xds: Any, token: str | None = None, header: bool = False
    ) -> None:
        def build(admin_port: int, workdir: Path) -> dict[str, Any]:
            metadata: dict[str, Any] = {"dataplane.admin.port": str(admin_port)}
            initial_metadata = []
            token_path = ""
            if token is not None and header:
                initial_metadata.append({"key": "authorization", "value": f"Bearer {token}"})
            elif token is not None:
                path = workdir / "token"
                path.write_text(token)
                token_path = str(path)
            node = {"id": f"{mesh}.{name}", "cluster": name, "metadata": metadata}
            return ads_bootstrap(
                node,
                admin_port,
                xds.port,
                initial_metadata=initial_metadata,
                ca_pem=xds.cert_pem,
                token_path=token_path,
            )

        super().__init__(build, ("--drain-time-s", str(DRAIN_TIME_S)))

    def refused(self) -> bool:
        """Whether Envoy is not connected to the control plane (its stream was refused)."""
        stats = self.admin("/stats?filter=control_plane.connected_state") or ""
        return "control_plane.connected_state: 0" in stats


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
