"""The access-log sink inside kuma-dp (spec §10.4): Envoy streams TCP-backend log entries here
over gRPC on a unix socket, and each entry becomes one line on the backend's TCP connection.

The generator puts `<tcp address>;<format>` in the logger's `log_name`, with Kuma's own
placeholders already filled in; the Envoy ones are substituted here. Unlike Kuma 0.3, TCP entries
are accepted (the outbound listeners are tcp_proxy, so they are the entries that matter), byte
counts keep Envoy's meaning (received = from downstream), and every line ends with a newline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

log = logging.getLogger("kuma-dp.accesslogs")
CONNECT_TIMEOUT = 5.0


def _address(addr: Any) -> str:
    sock = addr.socket_address
    return f"{sock.address}:{sock.port_value}" if sock.address else ""


def _ms(duration: Any) -> str:
    return str(duration.ToMilliseconds())


def _placeholders(
    common: accesslog_pb2.AccessLogCommon, received: int, sent: int
) -> dict[str, Callable[[], str]]:
    return {
        "%START_TIME%": lambda: common.start_time.ToJsonString(),
        "%DOWNSTREAM_REMOTE_ADDRESS%": lambda: _address(common.downstream_remote_address),
        "%DOWNSTREAM_LOCAL_ADDRESS%": lambda: _address(common.downstream_local_address),
        "%UPSTREAM_HOST%": lambda: _address(common.upstream_remote_address),
        "%UPSTREAM_REMOTE_ADDRESS%": lambda: _address(common.upstream_remote_address),
        "%UPSTREAM_LOCAL_ADDRESS%": lambda: _address(common.upstream_local_address),
        "%UPSTREAM_CLUSTER%": lambda: common.upstream_cluster,
        "%BYTES_RECEIVED%": lambda: str(received),
        "%BYTES_SENT%": lambda: str(sent),
        # `duration` is the whole stream/connection; older Envoys only sent the tx time.
        "%DURATION%": lambda: _ms(
            common.duration
            if common.HasField("duration")
            else common.time_to_last_downstream_tx_byte
        ),
        "%RESPONSE_TX_DURATION%": lambda: _ms(common.time_to_last_downstream_tx_byte),
    }


def render(fmt: str, common: accesslog_pb2.AccessLogCommon, received: int, sent: int) -> str:
    line = fmt
    for key, value in _placeholders(common, received, sent).items():
        if key in line:
            line = line.replace(key, value())
    return line if line.endswith("\n") else line + "\n"


def render_message(fmt: str, message: als_pb2.StreamAccessLogsMessage) -> list[str]:
    lines = [
        render(
            fmt, e.common_properties, e.request.request_body_bytes, e.response.response_body_bytes
        )
        for e in message.http_logs.log_entry
    ]
    lines += [
        render(
            fmt,
            e.common_properties,
            e.connection_properties.received_bytes,
            e.connection_properties.sent_bytes,
        )
        for e in message.tcp_logs.log_entry
    ]
    return lines


def parse_log_name(log_name: str) -> tuple[str, int, str]:
    """`host:port;format` -> (host, port, format); ValueError on any other shape."""
    address, sep, fmt = log_name.partition(";")
    host, colon, port = address.rpartition(":")
    if not sep or not colon or not host or not port.isdigit():
        raise ValueError(f"log name {log_name!r} is not of the form '<address>;<format>'")
    return host.strip("[]"), int(port), fmt


class AccessLogSink(als_pb2_grpc.AccessLogServiceServicer):
    async def StreamAccessLogs(  # noqa: N802 (gRPC's method name)
        self,
        request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> als_pb2.StreamAccessLogsResponse:
        writer: asyncio.StreamWriter | None = None
        fmt = ""
        try:
            async for message in request_iterator:
                if writer is None:  # the identifier comes on the first message of a stream
                    try:
                        host, port, fmt = parse_log_name(message.identifier.log_name)
                        _, writer = await asyncio.wait_for(
                            asyncio.open_connection(host, port), CONNECT_TIMEOUT
                        )
                    except (ValueError, OSError, TimeoutError) as exc:
                        log.warning("access log stream rejected: %s", exc)
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                assert writer is not None
                writer.write("".join(render_message(fmt, message)).encode())
                await writer.drain()
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        return als_pb2.StreamAccessLogsResponse()


async def start_sink(socket_path: str) -> grpc.aio.Server:
    """Serve the sink on `socket_path`, a new path in a directory of kuma-dp's own: nothing
    that is there already is removed."""
    server = grpc.aio.server()
    als_pb2_grpc.add_AccessLogServiceServicer_to_server(AccessLogSink(), server)
    if not server.add_insecure_port(f"unix:{socket_path}"):
        raise OSError(f"could not listen on unix socket {socket_path}")
    await server.start()
    return server


async def stop_sink(server: grpc.aio.Server, socket_path: str) -> None:
    await server.stop(grace=1.0)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
