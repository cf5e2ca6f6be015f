"""Outbound listeners, with TrafficRoute weighted splits, and the EDS clusters and
ClusterLoadAssignments of their destinations (spec §8.6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf.message import Message

from kuma.resources.dataplane import parse_outbound
from kuma.resources.selectors import SERVICE_TAG
from services.xds.generator import builders, health_checks
from services.xds.generator.access_logs import access_logs
from services.xds.generator.context import Proxy, Route
from services.xds.generator.errors import GenerationError
from services.xds.generator.snapshot import MeshSnapshot


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


def load_assignment(snapshot: MeshSnapshot, split: Split) -> endpoint_pb2.ClusterLoadAssignment:
    """Shared: the cluster name fully determines the destination selector, and the endpoints
    are all it reads."""
    return snapshot.by_endpoints.get(
        ("cla", split.cluster),
        lambda: builders.load_assignment(
            split.cluster,
            (
                builders.lb_endpoint(e.ip, e.port, e.tags)
                for e in snapshot.endpoints_matching(split.destination)
            ),
        ),
    )


def eds_cluster(proxy: Proxy, split: Split) -> cluster_pb2.Cluster:
    """Shared by every dataplane that picks the same health check and TLS for this cluster."""
    check = proxy.health_checks.get(split.service)
    tls = proxy.mtls.upstream(split.service) if proxy.mtls is not None else None
    key = (
        "cluster",
        split.cluster,
        check.name if check is not None else "",
        tls.SerializeToString(deterministic=True) if tls is not None else b"",
    )

    def build() -> cluster_pb2.Cluster:
        cluster = cluster_pb2.Cluster(
            name=split.cluster,
            type=cluster_pb2.Cluster.EDS,
            connect_timeout=builders.duration(builders.CONNECT_TIMEOUT),
        )
        cluster.eds_cluster_config.eds_config.CopyFrom(builders.ads_source())
        if tls is not None:
            cluster.transport_socket.CopyFrom(tls)
        if check is not None:
            health_checks.apply(cluster, check.spec.conf)
        return cluster

    return proxy.snapshot.shared.get(key, build)


class _Outbound(NamedTuple):
    service: str
    ip: str
    port: int
    splits: list[Split]


def _plan(proxy: Proxy) -> list[_Outbound]:
    out = []
    for i, outbound in enumerate(proxy.spec.networking.outbound):
        iface = parse_outbound(outbound.interface)
        if iface is None:
            raise GenerationError(
                f"dataplane.networking.outbound[{i}].interface: value is not valid: "
                f'"{outbound.interface}"'
            )
        route = proxy.routes[outbound.service]  # implicit when no TrafficRoute matches
        chosen = splits(route)
        if not chosen:
            raise GenerationError(
                f'trafficroute{{name="{route.name}"}}.conf: has no destination with weight > 0'
            )
        out.append(_Outbound(outbound.service, iface.ip, iface.port, chosen))
    return out


def _listener(proxy: Proxy, outbound: _Outbound) -> Message:
    chosen = outbound.splits
    proxy_filter = builders.tcp_proxy(
        outbound.service,
        cluster=chosen[0].cluster if len(chosen) == 1 else "",
        weighted=[(s.cluster, s.weight) for s in chosen],
        access_logs=access_logs(proxy, outbound.service),
    )
    return builders.listener(
        outbound_listener_name(outbound.ip, outbound.port),
        outbound.ip,
        outbound.port,
        [proxy_filter],
        virtual=proxy.virtual,
    )


def generate(proxy: Proxy) -> list[Message]:
    plan = _plan(proxy)
    # Outbounds may share destinations: emit each cluster and assignment once.
    clusters: dict[str, Message] = {}
    assignments: dict[str, Message] = {}
    for outbound in plan:
        for split in outbound.splits:
            clusters.setdefault(split.cluster, eds_cluster(proxy, split))
            assignments.setdefault(split.cluster, load_assignment(proxy.snapshot, split))
    # Listeners read the outbounds, their routes and loggers; clusters are shared per snapshot.
    listeners = proxy.part(
        "outbound",
        (proxy.spec, proxy.routes, proxy.logs),
        lambda: [_listener(proxy, outbound) for outbound in plan],
    )
    return [*clusters.values(), *assignments.values(), *listeners]
