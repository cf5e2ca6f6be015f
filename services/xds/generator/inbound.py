"""Inbound listeners and their local application clusters (spec §8.5)."""

from __future__ import annotations

from google.protobuf.message import Message

from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec, parse_inbound
from services.xds.generator import builders
from services.xds.generator.context import Proxy, transparent_port
from services.xds.generator.errors import GenerationError
from services.xds.generator.security import InboundSecurity, MtlsHook


def local_cluster_name(workload_port: int) -> str:
    return f"localhost:{workload_port}"


def inbound_listener_name(ip: str, port: int) -> str:
    return f"inbound:{ip}:{port}"


def generate(proxy: Proxy) -> list[Message]:
    return proxy.parts.build(build, proxy.dataplane, proxy.mtls)


def build(dataplane: Resource, mtls: MtlsHook | None) -> list[Message]:
    spec: DataplaneSpec = dataplane.spec
    virtual = transparent_port(spec) != 0
    out: list[Message] = []
    seen: set[str] = set()
    for i, inbound in enumerate(spec.networking.inbound):
        iface = parse_inbound(inbound.interface)
        if iface is None:
            raise GenerationError(
                f"dataplane.networking.inbound[{i}].interface: value is not valid: "
                f'"{inbound.interface}"'
            )
        name = inbound_listener_name(iface.dataplane_ip, iface.dataplane_port)
        if name in seen:  # the first interface with this address wins (§8.5)
            continue
        seen.add(name)
        cluster = local_cluster_name(iface.workload_port)
        security = mtls.inbound(name, inbound.tags) if mtls is not None else InboundSecurity()
        out.append(builders.static_cluster(cluster, "127.0.0.1", iface.workload_port))
        out.append(
            builders.listener(
                name,
                iface.dataplane_ip,
                iface.dataplane_port,
                [*security.filters, builders.tcp_proxy(cluster, cluster=cluster)],
                virtual=virtual,
                transport_socket=security.transport_socket,
            )
        )
    return out
