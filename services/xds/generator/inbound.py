"""Inbound listeners and their local application clusters (spec §8.5)."""

from __future__ import annotations

from typing import NamedTuple

from google.protobuf.message import Message

from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec, parse_inbound
from services.xds.generator import builders
from services.xds.generator.context import transparent_port
from services.xds.generator.errors import GenerationError
from services.xds.generator.parts import Parts
from services.xds.generator.security import InboundSecurity, MtlsHook


def local_cluster_name(workload_port: int) -> str:
    return f"localhost:{workload_port}"


def inbound_listener_name(ip: str, port: int) -> str:
    return f"inbound:{ip}:{port}"


class Interface(NamedTuple):
    """One inbound listener of a dataplane, as its interface names it."""

    listener: str
    ip: str
    port: int
    workload_port: int
    tags: tuple[tuple[str, str], ...]


def interfaces(dataplane: Resource) -> list[Interface]:
    """The dataplane's inbound listeners; the first interface with an address wins (§8.5)."""
    spec: DataplaneSpec = dataplane.spec
    out: dict[str, Interface] = {}
    for i, inbound in enumerate(spec.networking.inbound):
        iface = parse_inbound(inbound.interface)
        if iface is None:
            raise GenerationError(
                f"dataplane.networking.inbound[{i}].interface: value is not valid: "
                f'"{inbound.interface}"'
            )
        name = inbound_listener_name(iface.dataplane_ip, iface.dataplane_port)
        if name not in out:
            tags = tuple(sorted(inbound.tags.items()))
            out[name] = Interface(
                name, iface.dataplane_ip, iface.dataplane_port, iface.workload_port, tags
            )
    return list(out.values())


def local_cluster(workload_port: int) -> Message:
    name = local_cluster_name(workload_port)
    return builders.static_cluster(name, "127.0.0.1", workload_port)


def security_of(mtls: MtlsHook, tags: tuple[tuple[str, str], ...]) -> InboundSecurity:
    return mtls.inbound(dict(tags))


def local_proxy(workload_port: int) -> Message:
    """The tcp_proxy filter to a workload port's local cluster."""
    cluster = local_cluster_name(workload_port)
    return builders.tcp_proxy(cluster, cluster=cluster)


def listener(
    parts: Parts, iface: Interface, security: InboundSecurity | None, virtual: bool
) -> Message:
    filters = security.filters(iface.listener) if security is not None else []
    return builders.listener(
        iface.listener,
        iface.ip,
        iface.port,
        # The proxy filter is the same for every interface of its port: copied, not rebuilt.
        [*filters, parts.build(local_proxy, iface.workload_port)],
        virtual=virtual,
        transport_socket=security.transport_socket if security is not None else None,
    )


def resources(parts: Parts, dataplane: Resource, mtls: MtlsHook | None) -> list[Message]:
    """A local cluster per workload port and a listener per interface. Clusters and the TLS and
    RBAC of a set of tags are shared by every dataplane; a listener is the dataplane's own (it
    names its address), rebuilt only when its interface or security changes."""
    virtual = transparent_port(dataplane.spec) != 0
    out: list[Message] = []
    for iface in parts.build(interfaces, dataplane):
        guard = parts.build(security_of, mtls, iface.tags) if mtls is not None else None
        out.append(parts.build(local_cluster, iface.workload_port))
        out.append(parts.build(listener, parts, iface, guard, virtual))
    return out
