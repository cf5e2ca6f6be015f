"""The Prometheus scrape endpoint: a listener that proxies `<path>` to Envoy's admin
`/stats/prometheus` (spec §8.8)."""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec, parse_inbound, parse_outbound
from services.xds.generator import builders
from services.xds.generator.context import transparent_port

LISTENER = "kuma:metrics:prometheus"
ADMIN_CLUSTER = "kuma:envoy:admin"
ANY_IP = "0.0.0.0"
HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"


def _collides(port: int, spec: DataplaneSpec) -> bool:
    """Whether an interface of the dataplane uses `port`: the listener binds 0.0.0.0, which
    overlaps every IP (inbound, its workload on 127.0.0.1, outbound)."""
    used: set[int] = set()
    for inbound in spec.networking.inbound:
        iface = parse_inbound(inbound.interface)
        if iface is not None:
            used |= {iface.dataplane_port, iface.workload_port}
    for outbound in spec.networking.outbound:
        oface = parse_outbound(outbound.interface)
        if oface is not None:
            used.add(oface.port)
    return port in used


def build(mesh: Resource, dataplane: Resource, admin_port: int) -> list[Message]:
    spec: DataplaneSpec = dataplane.spec
    settings = spec.prometheus_endpoint(mesh.spec)
    if settings is None or admin_port == 0 or _collides(settings[0], spec):
        return []
    port, path = settings
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix=path),
        route=route_components_pb2.RouteAction(
            cluster=ADMIN_CLUSTER, prefix_rewrite="/stats/prometheus"
        ),
    )
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=LISTENER,
        http_filters=[
            hcm_pb2.HttpFilter(name=ROUTER, typed_config=builders.pack(router_pb2.Router()))
        ],
        route_config=route_pb2.RouteConfiguration(
            virtual_hosts=[
                route_components_pb2.VirtualHost(name="envoy_admin", domains=["*"], routes=[route])
            ]
        ),
    )
    return [
        builders.static_cluster(ADMIN_CLUSTER, "127.0.0.1", admin_port),
        builders.listener(
            LISTENER,
            ANY_IP,
            port,
            [builders.network_filter(HCM, manager)],
            virtual=transparent_port(spec) != 0,
        ),
    ]
