"""gRPC's own xDS client (`xds:///echo`) reaches a backend through the control plane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent import futures

import grpc

from kuma.resources import wire
from tests.xds_ads.harness import free_port

CLIENT = """
import sys, grpc
channel = grpc.insecure_channel("xds:///echo")
call = channel.unary_unary("/test.Echo/Echo")
print(call(b"ping", timeout=15).decode())
"""


def echo_server(reply: bytes) -> tuple[grpc.Server, int]:
    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: reply + req)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_grpc_xds_client_reaches_backend(core, xds, tmp_path):
    server, port = echo_server(b"echo-1:")
    try:
        for doc in (
            {
                "type": "Dataplane",
                "mesh": "default",
                "name": "echo-1",
                "networking": {
                    "inbound": [
                        {"interface": f"127.0.0.1:{port}:{port}", "tags": {"service": "echo"}}
                    ]
                },
            },
            {
                "type": "Dataplane",
                "mesh": "default",
                "name": "client-1",
                "networking": {
                    "inbound": [
                        {
                            "interface": f"127.0.0.1:{free_port()}:{free_port()}",
                            "tags": {"service": "client"},
                        }
                    ],
                    "outbound": [{"interface": f":{free_port()}", "service": "echo"}],
                },
            },
        ):
            core.manager.upsert(wire.from_json(doc))
        ca = tmp_path / "ca.pem"
        ca.write_bytes(xds.cert_pem)
        bootstrap = tmp_path / "grpc-bootstrap.json"
        bootstrap.write_text(
            json.dumps(
                {
                    "xds_servers": [
                        {
                            "server_uri": f"127.0.0.1:{xds.port}",
                            "channel_creds": [
                                {"type": "tls", "config": {"ca_certificate_file": str(ca)}}
                            ],
                            "server_features": ["xds_v3"],
                        }
                    ],
                    "node": {"id": "default.client-1", "cluster": "client"},
                }
            )
        )
        env = {**os.environ, "GRPC_XDS_BOOTSTRAP": str(bootstrap)}
        result = subprocess.run(
            [sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip() == "echo-1:ping"
    finally:
        server.stop(0)
