"""TrafficLog -> access loggers on an outbound tcp_proxy (spec §8.7).

File backends log through Envoy's file logger. TCP backends go through kuma-dp: Envoy streams
entries over gRPC to the bootstrap's `access_log_sink` cluster (a unix socket served by kuma-dp),
and kuma-dp forwards them to the backend's address, which travels in `log_name` as
`<address>;<format>`. The outbound listener is a tcp_proxy, so it is the TCP gRPC logger
(`TcpGrpcAccessLogConfig`) that produces entries there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from google.protobuf.message import Message

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


@dataclass(frozen=True)
class Logger:
    """What a backend's access log entry is, but its format: built once per backend, and copied
    into every dataplane's outbound listener with that dataplane's format (the format names it,
    so each listener's logger is its own)."""

    backend: LoggingBackend
    entry: accesslog_pb2.AccessLog  # name and config type
    config: Message  # the logger's config, format unset
    formatted: Callable[[Message, str], None]  # sets the format in a copy of `config`

    @classmethod
    def of(cls, backend: LoggingBackend) -> Logger | None:
        """None for a backend that logs nowhere (neither file nor TCP)."""
        if backend.file is not None:
            file_config = file_pb2.FileAccessLog(path=backend.file.path)
            return cls._make(backend, FILE_LOGGER, file_config, _file_format)
        if backend.tcp is not None:
            address = backend.tcp.address
            grpc_config = als_pb2.TcpGrpcAccessLogConfig()
            common = grpc_config.common_config
            common.grpc_service.envoy_grpc.cluster_name = ACCESS_LOG_SINK
            common.transport_api_version = config_source_pb2.ApiVersion.V3
            return cls._make(
                backend, TCP_GRPC_LOGGER, grpc_config, functools.partial(_tcp_format, address)
            )
        return None

    @classmethod
    def _make(
        cls,
        backend: LoggingBackend,
        name: str,
        config: Message,
        formatted: Callable[[Message, str], None],
    ) -> Logger:
        entry = accesslog_pb2.AccessLog(name=name)
        entry.typed_config.type_url = builders.type_url(config)
        return cls(backend, entry, config, formatted)

    def add_to(self, loggers: Any, source: LogSource, destination: str) -> None:
        """Append this logger, in the format `source` renders for calls to `destination`, to a
        repeated `access_log` field."""
        # Copies of prebuilt messages with one field set: with the listener copied too, half
        # the time of building them, for every dataplane whose logs change.
        config = type(self.config)()
        config.CopyFrom(self.config)
        self.formatted(config, render_format(source, self.backend, destination))
        entry = loggers.add()
        entry.CopyFrom(self.entry)
        entry.typed_config.value = config.SerializeToString(deterministic=True)


def _file_format(config: Any, fmt: str) -> None:
    config.log_format.text_format_source.inline_string = fmt


def _tcp_format(address: str, config: Any, fmt: str) -> None:
    # kuma-dp's sink reads the backend's address from the log name (module docstring).
    config.common_config.log_name = f"{address};{fmt}"
