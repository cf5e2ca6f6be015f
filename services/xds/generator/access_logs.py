"""TrafficLog -> access loggers on an outbound tcp_proxy (spec §8.7).

File backends log through Envoy's file logger. TCP backends go through kuma-dp: Envoy streams
entries over gRPC to the bootstrap's `access_log_sink` cluster (a unix socket served by kuma-dp),
and kuma-dp forwards them to the backend's address, which travels in `log_name` as
`<address>;<format>`. The outbound listener is a tcp_proxy, so it is the TCP gRPC logger
(`TcpGrpcAccessLogConfig`) that produces entries there.
"""

from __future__ import annotations

from typing import NamedTuple

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2

from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec, parse_inbound
from kuma.resources.mesh import LoggingBackend
from kuma.resources.selectors import SERVICE_TAG
from services.xds.generator import builders

ACCESS_LOG_SINK = "access_log_sink"
FILE_LOGGER = "envoy.access_loggers.file"
TCP_GRPC_LOGGER = "envoy.access_loggers.tcp_grpc"
DEFAULT_FORMAT = (
    "[%START_TIME%] %KUMA_SOURCE_ADDRESS%(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%"
    "(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, "
    "received: %BYTES_RECEIVED% bytes\n"
)


class LogSource(NamedTuple):
    """What a log line says of the dataplane it leaves from: its identifying service, and the
    `IP:0` of the inbound that carries that service (`:0` when none does)."""

    service: str
    address: str

    @classmethod
    def of(cls, dataplane: Resource) -> LogSource:
        spec: DataplaneSpec = dataplane.spec
        service = spec.service()
        for inbound in spec.networking.inbound:
            iface = parse_inbound(inbound.interface)
            if iface is not None and inbound.tags.get(SERVICE_TAG) == service:
                return cls(service, f"{iface.dataplane_ip}:0")
        return cls(service, ":0")


def render_format(source: LogSource, backend: LoggingBackend, destination: str) -> str:
    """Kuma's own placeholders are known only here, so they are filled in at generation time."""
    return (
        (backend.format or DEFAULT_FORMAT)
        .replace("%KUMA_SOURCE_ADDRESS%", source.address)
        .replace("%KUMA_SOURCE_SERVICE%", source.service)
        .replace("%KUMA_DESTINATION_SERVICE%", destination)
    )


def access_logs(
    source: LogSource | None, backend: LoggingBackend | None, service: str
) -> list[accesslog_pb2.AccessLog]:
    """Loggers for the outbound listener of `service`; none without a resolved backend."""
    if backend is None:
        return []
    assert source is not None, "a dataplane that logs has a source"
    fmt = render_format(source, backend, service)
    # Fields are set in place rather than built from nested messages: every dataplane's
    # loggers are its own (the format names it), rebuilt whenever its backend changes.
    if backend.file is not None:
        config = file_pb2.FileAccessLog(path=backend.file.path)
        config.log_format.text_format_source.inline_string = fmt
        return [accesslog_pb2.AccessLog(name=FILE_LOGGER, typed_config=builders.pack(config))]
    if backend.tcp is not None:
        grpc_config = als_pb2.TcpGrpcAccessLogConfig()
        common = grpc_config.common_config
        common.log_name = f"{backend.tcp.address};{fmt}"
        common.grpc_service.envoy_grpc.cluster_name = ACCESS_LOG_SINK
        common.transport_api_version = config_source_pb2.ApiVersion.V3
        return [
            accesslog_pb2.AccessLog(name=TCP_GRPC_LOGGER, typed_config=builders.pack(grpc_config))
        ]
    return []
