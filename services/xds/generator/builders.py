"""Small builders for the Envoy v3 messages every generator needs, so each module states only
what is specific to it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, duration_pb2, message, struct_pb2, wrappers_pb2

from services.xds.ads.types import PREFIX

# Kuma's fixed connect timeout for every generated cluster (spec §8.5-§8.10).
CONNECT_TIMEOUT = timedelta(seconds=5)
TCP_PROXY = "envoy.filters.network.tcp_proxy"
LB_METADATA = "envoy.lb"


def pack(msg: message.Message) -> any_pb2.Any:
    """`msg` in an Any, serialized deterministically. A resource's version is the hash of its
    bytes, and a packed message's bytes are opaque to the serializer of the resource around it:
    left to the default, a map in it (RBAC policies) is written in an order seeded per process,
    and two replicas give one listener two versions."""
    out = any_pb2.Any()
    out.Pack(msg, deterministic=True)
    return out


def type_url(msg: message.Message) -> str:
    return PREFIX + msg.DESCRIPTOR.full_name


def duration(value: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


def socket_address(ip: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=ip, port_value=port)
    )


def ads_source() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.ApiVersion.V3,
    )


def lb_endpoint(
    ip: str, port: int, tags: Mapping[str, str] | None = None
) -> endpoint_components_pb2.LbEndpoint:
    endpoint = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=socket_address(ip, port))
    )
    if tags:
        # All inbound tags go to `envoy.lb` so subset load balancing can use them (spec §8.6).
        fields = struct_pb2.Struct()
        fields.update(dict(sorted(tags.items())))
        endpoint.metadata.filter_metadata[LB_METADATA].CopyFrom(fields)
    return endpoint


def load_assignment(
    cluster_name: str, endpoints: Iterable[endpoint_components_pb2.LbEndpoint]
) -> endpoint_pb2.ClusterLoadAssignment:
    # One locality, possibly empty: Kuma's `endpoints: [{}]` when nothing matches (spec §8.6).
    # gRPC's xDS client never routes to a locality without a weight (envoy-notes.md); Envoy
    # ignores the weight unless locality-weighted balancing is on.
    locality = endpoint_components_pb2.LocalityLbEndpoints(
        locality=base_pb2.Locality(),  # gRPC rejects a locality that is not present at all
        lb_endpoints=list(endpoints),
        load_balancing_weight=wrappers_pb2.UInt32Value(value=1),
    )
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name, endpoints=[locality])


def static_cluster(name: str, ip: str, port: int) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.STATIC,
        connect_timeout=duration(CONNECT_TIMEOUT),
        load_assignment=load_assignment(name, [lb_endpoint(ip, port)]),
    )


def listener(
    name: str,
    ip: str,
    port: int,
    filters: Iterable[listener_components_pb2.Filter],
    *,
    virtual: bool = False,
    transport_socket: base_pb2.TransportSocket | None = None,
) -> listener_pb2.Listener:
    """A listener with one filter chain; `virtual` ones only receive connections handed over by
    the transparent-proxy `catch_all` listener (spec §8.10)."""
    # Set in place rather than built from nested messages: half the time, and every node
    # whose logs or permissions change has its listeners rebuilt.
    out = listener_pb2.Listener(name=name)
    address = out.address.socket_address
    address.address = ip
    address.port_value = port
    chain = out.filter_chains.add()
    chain.filters.extend(filters)
    if transport_socket is not None:
        chain.transport_socket.CopyFrom(transport_socket)
    if virtual:
        out.bind_to_port.value = False
    return out


def network_filter(name: str, config: message.Message) -> listener_components_pb2.Filter:
    return listener_components_pb2.Filter(name=name, typed_config=pack(config))


def tcp_proxy_config(
    stat_prefix: str, cluster: str = "", weighted: Iterable[tuple[str, int]] = ()
) -> tcp_proxy_pb2.TcpProxy:
    config = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    if cluster:
        config.cluster = cluster
    else:
        config.weighted_clusters.clusters.extend(
            tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(name=n, weight=w)
            for n, w in weighted
        )
    return config


def tcp_proxy(
    stat_prefix: str, cluster: str = "", weighted: Iterable[tuple[str, int]] = ()
) -> listener_components_pb2.Filter:
    return network_filter(TCP_PROXY, tcp_proxy_config(stat_prefix, cluster, weighted))
