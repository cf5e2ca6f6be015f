"""Outbound listeners, with TrafficRoute weighted splits, and the EDS clusters and
ClusterLoadAssignments of their destinations (spec §8.6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf.message import Message

from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec, parse_outbound
from kuma.resources.mesh import LoggingBackend
from kuma.resources.selectors import SERVICE_TAG
from services.xds.generator import builders, health_checks
from services.xds.generator.access_logs import Logger, LogSource
from services.xds.generator.config import ProxyConfig
from services.xds.generator.context import Choice, Choices, Proxy, Route, transparent_port
from services.xds.generator.errors import GenerationError
from services.xds.generator.parts import Parts
from services.xds.generator.security import upstream_socket
from services.xds.generator.snapshot import NO_ENDPOINTS, EndpointSet, endpoints_matching


def outbound_listener_name(ip: str, port: int) -> str:
    return f"outbound:{ip}:{port}"


def cluster_name(destination: Mapping[str, str]) -> str:
    """`db`, or `db{role=master,version=2}` for a destination narrowed by more tags."""
    extra = ",".join(f"{k}={v}" for k, v in sorted(destination.items()) if k != SERVICE_TAG)
    service = destination[SERVICE_TAG]
    return f"{service}{{{extra}}}" if extra else service


@dataclass(frozen=True)
class Split:
    cluster: str
    weight: int
    destination: Mapping[str, str]

    @property
    def service(self) -> str:
        return self.destination[SERVICE_TAG]


def _go_map(tags: Mapping[str, str]) -> str:
    # Kuma's error messages print the destination as a Go map.
    return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(tags.items())) + "]"


def splits(route: Route) -> list[Split]:
    """One split per destination cluster; weight-0 entries are skipped and entries naming the
    same cluster add up, so each cluster appears once in `weighted_clusters`."""
    merged: dict[str, Split] = {}
    for j, entry in enumerate(route.splits):
        if entry.weight == 0:
            continue
        if SERVICE_TAG not in entry.destination:
            raise GenerationError(
                f'trafficroute{{name="{route.name}"}}.conf[{j}].destination: mandatory tag '
                f'"service" is missing: {_go_map(entry.destination)}'
            )
        name = cluster_name(entry.destination)
        weight = entry.weight + (merged[name].weight if name in merged else 0)
        merged[name] = Split(name, weight, dict(entry.destination))
    return list(merged.values())


def load_assignment(
    cluster: str, destination: tuple[tuple[str, str], ...], endpoints: EndpointSet
) -> endpoint_pb2.ClusterLoadAssignment:
    """The endpoints of the destination's service that match every tag of the destination."""
    selector = dict(destination)
    return builders.load_assignment(
        cluster,
        (
            builders.lb_endpoint(e.ip, e.port, e.tags)
            for e in endpoints_matching(endpoints, selector)
        ),
    )


def eds_cluster(
    name: str, service: str, check: Resource | None, tls_mesh: str | None
) -> cluster_pb2.Cluster:
    """Shared by every dataplane that picks the same health check for this cluster; with mTLS
    (`tls_mesh`) it presents the dataplane's identity, which is a secret, not part of it."""
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        connect_timeout=builders.duration(builders.CONNECT_TIMEOUT),
    )
    cluster.eds_cluster_config.eds_config.CopyFrom(builders.ads_source())
    if tls_mesh is not None:
        cluster.transport_socket.CopyFrom(upstream_socket(tls_mesh, service))
    if check is not None:
        health_checks.apply(cluster, check.spec.conf)
    return cluster


def destination_resources(
    parts: Parts,
    split: Split,
    checks: Choice[Resource],
    tls_mesh: str | None,
    endpoints: EndpointSet,
) -> tuple[Message, Message]:
    """The Cluster and ClusterLoadAssignment of a split, from the mesh's parts; `endpoints` are
    those of the split's service."""
    cluster = parts.build(
        eds_cluster, split.cluster, split.service, checks.get(split.service), tls_mesh
    )
    assignment = parts.build(
        load_assignment, split.cluster, tuple(sorted(split.destination.items())), endpoints
    )
    return cluster, assignment


class _Outbound(NamedTuple):
    service: str
    ip: str
    port: int
    splits: list[Split]


class OutboundSide(NamedTuple):
    """What the outbound listeners and clusters read of a dataplane: its outbounds (interface,
    service) and whether it is transparently proxied. Dataplanes that call the same services on
    the same ports share their listeners, unless their access logs name them."""

    outbounds: tuple[tuple[str, str], ...]
    virtual: bool

    @classmethod
    def of(cls, dataplane: Resource) -> OutboundSide:
        spec: DataplaneSpec = dataplane.spec
        return cls(
            tuple((o.interface, o.service) for o in spec.networking.outbound),
            transparent_port(spec) != 0,
        )


def plan(side: OutboundSide, routes: Choice[Route]) -> list[_Outbound]:
    out = []
    for i, (interface, service) in enumerate(side.outbounds):
        iface = parse_outbound(interface)
        if iface is None:
            raise GenerationError(
                f'dataplane.networking.outbound[{i}].interface: value is not valid: "{interface}"'
            )
        route = routes[service]  # implicit when no TrafficRoute matches
        chosen = splits(route)
        if not chosen:
            raise GenerationError(
                f'trafficroute{{name="{route.name}"}}.conf: has no destination with weight > 0'
            )
        out.append(_Outbound(service, iface.ip, iface.port, chosen))
    return out


class _Plain(NamedTuple):
    """An outbound listener without access logs, and its tcp_proxy's config."""

    service: str
    listener: listener_pb2.Listener
    proxy: tcp_proxy_pb2.TcpProxy


def plain_listeners(parts: Parts, side: OutboundSide, routes: Choice[Route]) -> list[_Plain]:
    """The outbound listeners as they are without logs: shared by every dataplane of the same
    side and routes."""
    out = []
    for outbound in parts.build(plan, side, routes):
        chosen = outbound.splits
        config = builders.tcp_proxy_config(
            outbound.service,
            cluster=chosen[0].cluster if len(chosen) == 1 else "",
            weighted=[(s.cluster, s.weight) for s in chosen],
        )
        listener = builders.listener(
            outbound_listener_name(outbound.ip, outbound.port),
            outbound.ip,
            outbound.port,
            [builders.network_filter(builders.TCP_PROXY, config)],
            virtual=side.virtual,
        )
        out.append(_Plain(outbound.service, listener, config))
    return out


def listeners(
    parts: Parts,
    side: OutboundSide,
    routes: Choice[Route],
    logs: Choice[LoggingBackend],
    source: LogSource | None,
) -> ProxyConfig:
    """The outbound listeners: they read the outbounds, their routes and loggers, and the
    dataplane's `source` where a logger's format names it."""
    out: list[Message] = []
    for plain in parts.build(plain_listeners, parts, side, routes):
        backend = logs.get(plain.service)
        logger = parts.build(Logger.of, backend) if backend is not None else None
        if logger is None:
            out.append(plain.listener)
            continue
        assert source is not None, "a dataplane that logs has a source"
        config = tcp_proxy_pb2.TcpProxy()
        config.CopyFrom(plain.proxy)
        logger.add_to(config.access_log, source, plain.service)
        listener = listener_pb2.Listener()
        listener.CopyFrom(plain.listener)
        typed = listener.filter_chains[0].filters[0].typed_config
        typed.value = config.SerializeToString(deterministic=True)
        out.append(listener)
    return ProxyConfig.of(out)


def clusters(
    parts: Parts,
    side: OutboundSide,
    routes: Choice[Route],
    checks: Choice[Resource],
    tls_mesh: str | None,
    endpoints: tuple[tuple[str, EndpointSet], ...],
) -> ProxyConfig:
    """The clusters and load assignments of the outbounds' destinations, each once."""
    by_service = dict(endpoints)
    found: dict[str, Message] = {}
    assignments: dict[str, Message] = {}
    for outbound in parts.build(plan, side, routes):
        for split in outbound.splits:
            if split.cluster not in found:
                found[split.cluster], assignments[split.cluster] = destination_resources(
                    parts, split, checks, tls_mesh, by_service.get(split.service, NO_ENDPOINTS)
                )
    return ProxyConfig.of([*found.values(), *assignments.values()])


def config(proxy: Proxy) -> tuple[ProxyConfig, ProxyConfig]:
    """The outbound side's clusters and load assignments, shared by every dataplane of the
    same side and choices, and its listeners, shared too unless access logs name the
    dataplane."""
    parts = proxy.parts
    # Dataplanes of one side differ only in what a log line says of them, so the source is
    # read only when some outbound logs.
    source = parts.build(LogSource.of, proxy.dataplane) if proxy.logs else None
    tls_mesh = proxy.mtls.mesh if proxy.mtls is not None else None
    side = parts.build(OutboundSide.of, proxy.dataplane)
    return parts.build(side_config, parts, side, proxy.choices, tls_mesh, source)


def side_config(
    parts: Parts,
    side: OutboundSide,
    choices: Choices,
    tls_mesh: str | None,
    source: LogSource | None,
) -> tuple[ProxyConfig, ProxyConfig]:
    """`config` for one side, choices and source: one look-up per dataplane, whose halves are
    parts of their own (the clusters do not depend on the source, nor the listeners on the
    health checks or endpoints)."""
    return (
        parts.build(
            clusters,
            parts,
            side,
            choices.routes,
            choices.health_checks,
            tls_mesh,
            choices.endpoints,
        ),
        parts.build(listeners, parts, side, choices.routes, choices.logs, source),
    )
