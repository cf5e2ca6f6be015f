"""Proxyless gRPC: a Dataplane whose client is gRPC's own xDS resolver (`xds:///service`).

gRPC asks LDS for a listener named after the target, which must be an `api_listener` holding
an HttpConnectionManager that takes its routes over ADS; then RDS, CDS and EDS as Envoy would.
The clusters and load assignments are the very ones the outbound generator shares."""

from __future__ import annotations

from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import wrappers_pb2
from google.protobuf.message import Message

from services.xds.generator import builders
from services.xds.generator.context import Proxy, Route
from services.xds.generator.errors import GenerationError
from services.xds.generator.outbound import destination_resources, splits

ROUTER = "envoy.filters.http.router"


def _api_listener(service: str) -> listener_pb2.Listener:
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=service,
        rds=hcm_pb2.Rds(config_source=builders.ads_source(), route_config_name=service),
        http_filters=[
            hcm_pb2.HttpFilter(name=ROUTER, typed_config=builders.pack(router_pb2.Router()))
        ],
    )
    return listener_pb2.Listener(
        name=service, api_listener=api_listener_pb2.ApiListener(api_listener=builders.pack(manager))
    )


def _route_config(service: str, route: Route) -> route_pb2.RouteConfiguration:
    chosen = splits(route)
    action = route_components_pb2.RouteAction()
    if len(chosen) == 1:
        action.cluster = chosen[0].cluster
    else:
        action.weighted_clusters.clusters.extend(
            route_components_pb2.WeightedCluster.ClusterWeight(
                name=s.cluster, weight=wrappers_pb2.UInt32Value(value=s.weight)
            )
            for s in chosen
        )
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix=""), route=action
    )
    host = route_components_pb2.VirtualHost(name=service, domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name=service, virtual_hosts=[host])


def generate(proxy: Proxy) -> list[Message]:
    parts = proxy.parts
    out: dict[str, Message] = {}
    for service, route in proxy.routes.items():
        chosen = splits(route)
        if not chosen:
            raise GenerationError(
                f'trafficroute{{name="{route.name}"}}.conf: has no destination with weight > 0'
            )
        for split in chosen:
            if f"cluster:{split.cluster}" not in out:
                cluster, assignment = destination_resources(
                    parts,
                    split,
                    proxy.health_checks,
                    proxy.mtls.mesh if proxy.mtls is not None else None,
                    proxy.snapshot.endpoints_of(split.service),
                )
                out[f"cluster:{split.cluster}"] = cluster
                out[f"cla:{split.cluster}"] = assignment
        out[f"listener:{service}"] = parts.build(_api_listener, service)
        out[f"route:{service}"] = parts.build(_route_config, service, route)
    return list(out.values())
