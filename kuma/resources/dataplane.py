"""Dataplane (spec §3.5): shape, interface grammar, validation and tag helpers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from kuma.errors import Violation
from kuma.resources import paths
from kuma.resources.base import Spec, Tags, UInt32
from kuma.resources.mesh import (
    DEFAULT_PROMETHEUS_PATH,
    DEFAULT_PROMETHEUS_PORT,
    MeshSpec,
    Prometheus,
)
from kuma.resources.selectors import SERVICE_TAG, matches

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_PORT = r"\d{1,5}"
_INBOUND = re.compile(rf"^({_IPV4}):({_PORT}):({_PORT})$")
_OUTBOUND = re.compile(rf"^({_IPV4})?:({_PORT})$")
DEFAULT_OUTBOUND_IP = "127.0.0.1"

INBOUND_FORMAT = (
    "invalid format: expected format is DATAPLANE_IP:DATAPLANE_PORT:WORKLOAD_PORT "
    "ex. 192.168.0.100:9090:8080"
)
OUTBOUND_FORMAT = (
    "invalid format: expected format is IP_ADDRESS:PORT where IP_ADDRESS is optional. "
    "ex. 192.168.0.100:9090 or :9090"
)


class InboundInterface(NamedTuple):
    dataplane_ip: str
    dataplane_port: int
    workload_port: int


class OutboundInterface(NamedTuple):
    ip: str
    port: int


def _port(text: str) -> int | None:
    port = int(text)
    return port if 1 <= port <= 65535 else None


def parse_inbound(text: str) -> InboundInterface | None:
    m = _INBOUND.match(text)
    if not m:
        return None
    dp_port, wl_port = _port(m.group(2)), _port(m.group(3))
    if dp_port is None or wl_port is None:
        return None
    return InboundInterface(m.group(1), dp_port, wl_port)


def parse_outbound(text: str) -> OutboundInterface | None:
    m = _OUTBOUND.match(text)
    if not m:
        return None
    port = _port(m.group(2))
    if port is None:
        return None
    return OutboundInterface(m.group(1) or DEFAULT_OUTBOUND_IP, port)


class Inbound(Spec):
    interface: str = ""
    tags: Tags = {}


class Outbound(Spec):
    interface: str = ""
    service: str = ""
    service_port: UInt32 = 0


class Gateway(Spec):
    tags: Tags = {}


class TransparentProxying(Spec):
    redirect_port: UInt32 = 0


class Networking(Spec):
    inbound: list[Inbound] = []
    gateway: Gateway | None = None
    outbound: list[Outbound] = []
    transparent_proxying: TransparentProxying | None = None


class DataplaneMetrics(Spec):
    prometheus: Prometheus | None = None


class DataplaneSpec(Spec):
    networking: Networking = Networking()
    metrics: DataplaneMetrics | None = None

    def tag_sets(self) -> list[Mapping[str, str]]:
        """Tags of every inbound, and of the gateway (0.3.2): what selectors are matched against."""
        sets: list[Mapping[str, str]] = [i.tags for i in self.networking.inbound]
        if self.networking.gateway is not None:
            sets.append(self.networking.gateway.tags)
        return sets

    def matches(self, selector: Mapping[str, str]) -> bool:
        return any(matches(selector, tags) for tags in self.tag_sets())

    def tags(self) -> dict[str, list[str]]:
        """Union of all tags, multi-valued, keys and values sorted."""
        merged: dict[str, set[str]] = {}
        for tags in self.tag_sets():
            for k, v in tags.items():
                merged.setdefault(k, set()).add(v)
        return {k: sorted(merged[k]) for k in sorted(merged)}

    def tags_string(self) -> str:
        """`service=metrics,mobile version=v1` (spec §3.3)."""
        return format_tags(self.tags())

    def service(self) -> str:
        """The identifying service: the alphabetically first `service` value, else `unknown`."""
        services = self.tags().get(SERVICE_TAG)
        return services[0] if services else "unknown"

    def ip(self) -> str:
        """The first inbound interface's dataplane IP; "" for a gateway (Kuma's `GetIP`)."""
        for inbound in self.networking.inbound:
            iface = parse_inbound(inbound.interface)
            return iface.dataplane_ip if iface is not None else ""
        return ""

    def prometheus_endpoint(self, mesh: MeshSpec) -> tuple[int, str] | None:
        """(port, path) of this dataplane's scrape endpoint when `mesh` enables Prometheus: the
        Mesh's settings, overridden field by field by the Dataplane's (spec §8.8)."""
        if mesh.metrics is None or mesh.metrics.prometheus is None:
            return None
        port, path = mesh.metrics.prometheus.port, mesh.metrics.prometheus.path
        own = self.metrics.prometheus if self.metrics is not None else None
        if own is not None:
            port, path = own.port or port, own.path or path
        return port or DEFAULT_PROMETHEUS_PORT, path or DEFAULT_PROMETHEUS_PATH


def format_tags(tags: Mapping[str, Iterable[str]]) -> str:
    return " ".join(f"{k}={','.join(tags[k])}" for k in sorted(tags))


def _validate_tags(tags: Mapping[str, str], path: str) -> list[Violation]:
    out: list[Violation] = []
    if SERVICE_TAG not in tags:
        out.append(Violation(paths.key(path, SERVICE_TAG), "tag has to exist"))
    for k in sorted(tags):
        if not tags[k]:
            out.append(Violation(paths.key(path, k), "tag value cannot be empty"))
    return out


def validate(spec: DataplaneSpec) -> list[Violation]:
    net = spec.networking
    out: list[Violation] = []
    if not net.inbound and net.gateway is None:
        out.append(
            Violation("networking", "has to contain at least one inbound interface or gateway")
        )
    if net.inbound and net.gateway is not None:
        out.append(Violation("networking", "inbound cannot be defined both with gateway"))
    if net.gateway is not None:
        out.extend(_validate_tags(net.gateway.tags, "networking.gateway.tags"))
    for i, inbound in enumerate(net.inbound):
        path = paths.index("networking.inbound", i)
        if parse_inbound(inbound.interface) is None:
            out.append(Violation(paths.field(path, "interface"), INBOUND_FORMAT))
        out.extend(_validate_tags(inbound.tags, paths.field(path, "tags")))
    for i, outbound in enumerate(net.outbound):
        path = paths.index("networking.outbound", i)
        if parse_outbound(outbound.interface) is None:
            out.append(Violation(paths.field(path, "interface"), OUTBOUND_FORMAT))
        if not outbound.service:
            out.append(Violation(paths.field(path, "service"), "cannot be empty"))
    return out
