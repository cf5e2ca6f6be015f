"""A renewed token file reaches the control plane at Envoy's next reconnect, without a restart:
kuma-dp's copy of the token (cli/kuma_dp/token_file.py) read by a real Envoy through the
bootstrap's file credentials, against a TLS ADS server that records what each stream presents."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc
from google.protobuf import json_format

from cli.kuma_dp.errors import DpError
from cli.kuma_dp.token_file import TokenCopy
from kuma.server_tls import self_signed
from services.bootstrap.generator import ads_grpc_service
from tests.waiting import wait_until
from tests.xds_ads.harness import EnvoyProcess, admin, shared_loop

pytestmark = pytest.mark.envoy

CERT = self_signed(["localhost", "127.0.0.1"])


def test_the_copy_is_the_token_alone_and_survives_a_bad_renewal(tmp_path: Path):
    source = tmp_path / "user.token"
    source.write_text("first-token\n")  # as `kumactl generate dataplane-token > file` writes it
    copy = TokenCopy(str(source), tmp_path)
    assert copy.path.read_text() == "first-token"  # no newline: it becomes a header value
    assert copy.path.stat().st_mode & 0o777 == 0o600
    assert copy.sync() is False
    source.write_text("second-token")
    assert copy.sync() is True and copy.path.read_text() == "second-token"
    source.write_text("")  # a renewal caught half-written
    with pytest.raises(DpError):
        copy.sync()
    assert copy.path.read_text() == "second-token"


class Recorder(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """Records each stream's `authorization`; ends the first one once `renewed` is set (the
    reconnect then follows the renewal, whatever Envoy's retry timing)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.renewed = threading.Event()

    async def StreamAggregatedResources(self, requests: Any, context: Any) -> None:  # noqa: N802
        self.seen.append(dict(context.invocation_metadata()).get("authorization", ""))
        if len(self.seen) == 1:
            while not self.renewed.is_set():
                await asyncio.sleep(0.05)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        async for _ in requests:
            pass


def test_envoy_presents_the_renewed_token_at_its_next_stream(tmp_path: Path):
    loop = shared_loop()
    recorder = Recorder()

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(recorder, server)
        port = server.add_secure_port(
            "127.0.0.1:0", grpc.ssl_server_credentials([(CERT.key_pem, CERT.cert_pem)])
        )
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    source = tmp_path / "user.token"
    source.write_text("token-before\n")
    copy = TokenCopy(str(source), tmp_path)
    service = ads_grpc_service("127.0.0.1", port, CERT.cert_pem.decode(), str(copy.path))

    def build(admin_port: int, workdir: Path) -> dict[str, Any]:  # noqa: ARG001
        return {
            "node": {"id": "default.web-1", "cluster": "web"},
            "admin": admin(admin_port),
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [json.loads(json_format.MessageToJson(service))],
                },
                "cds_config": {"ads": {}, "resource_api_version": "V3"},
                "lds_config": {"ads": {}, "resource_api_version": "V3"},
            },
        }

    envoy = EnvoyProcess(build)
    try:
        wait_until(lambda: recorder.seen, 10, "Envoy's first stream")
        source.write_text("token-after\n")  # the user renews the file; kuma-dp follows it
        copy.sync()
        recorder.renewed.set()
        wait_until(lambda: len(recorder.seen) >= 2, 15, "Envoy's reconnect")
        assert recorder.seen[:2] == ["Bearer token-before", "Bearer token-after"]
        dump = envoy.admin("/config_dump") or ""
        assert "token-before" not in dump and "token-after" not in dump
    finally:
        envoy.stop()
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
