"""The Envoy v3 bootstrap of one Dataplane (spec §7.2), as a pure function of its inputs.

Built as a typed `Bootstrap` message (so a wrong field fails here, not in Envoy) and rendered as
YAML of its protobuf-JSON form, which is what Kuma served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import yaml
from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    grpc_service_pb2,
    protocol_pb2,
)
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2, duration_pb2, json_format

from kuma.config import BootstrapParamsConfig

ADS_CLUSTER = "ads_cluster"
# The generator's TCP access loggers send to this cluster (services/xds/generator/access_logs.py).
ACCESS_LOG_SINK = "access_log_sink"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
V3 = config_source_pb2.ApiVersion.V3


@dataclass(frozen=True, slots=True)
class BootstrapInput:
    mesh: str
    name: str
    service: str  # the Dataplane's identifying service: node.cluster
    admin_port: int = 0  # effective: the request's, else params.admin_port; 0 = no admin
    dataplane_token_path: str = ""


def access_log_socket(mesh: str, name: str) -> str:
    """The unix socket kuma-dp serves access logs on (spec §7.2); kuma-dp reads it back from the
    bootstrap's `access_log_sink` cluster, so this is the one place that names it."""
    return f"/tmp/kuma-access-logs-{name}-{mesh}.sock"


def xds_addresses(hosts: str, default_port: int) -> list[tuple[str, int]]:
    """`xdsHost` as a comma-separated list of `host`, `host:port` or `[ipv6]:port` entries."""
    out: list[tuple[str, int]] = []
    for entry in (e.strip() for e in hosts.split(",")):
        if not entry:
            continue
        host, port = entry, default_port
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else default_port
        elif entry.count(":") == 1:
            host, _, text = entry.partition(":")
            port = int(text)
        out.append((host, port))
    return out


def _duration(value: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


def _http2_options() -> dict[str, any_pb2.Any]:
    options = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
        )
    )
    packed = any_pb2.Any()
    packed.Pack(options)
    return {HTTP_OPTIONS: packed}


def _grpc_cluster(
    name: str,
    kind: cluster_pb2.Cluster.DiscoveryType.ValueType,
    timeout: timedelta,
    addresses: list[address_pb2.Address],
) -> cluster_pb2.Cluster:
    """A gRPC (HTTP/2) cluster with TCP keepalive, one endpoint per address."""
    return cluster_pb2.Cluster(
        name=name,
        type=kind,
        connect_timeout=_duration(timeout),
        typed_extension_protocol_options=_http2_options(),
        upstream_connection_options=cluster_pb2.UpstreamConnectionOptions(
            tcp_keepalive=address_pb2.TcpKeepalive()
        ),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(address=address)
                        )
                        for address in addresses
                    ]
                )
            ],
        ),
    )


def _ads_cluster(params: BootstrapParamsConfig) -> cluster_pb2.Cluster:
    # STRICT_DNS: a name resolving to every xDS replica yields one host per address, and
    # literal IPs work too; IPv4 first because the xDS service binds 0.0.0.0 by default.
    cluster = _grpc_cluster(
        ADS_CLUSTER,
        cluster_pb2.Cluster.STRICT_DNS,
        params.xds_connect_timeout,
        [
            address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address=host, port_value=port)
            )
            for host, port in xds_addresses(params.xds_host, params.xds_port)
        ],
    )
    cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
    return cluster


def _sink_cluster(params: BootstrapParamsConfig, mesh: str, name: str) -> cluster_pb2.Cluster:
    pipe = address_pb2.Address(pipe=address_pb2.Pipe(path=access_log_socket(mesh, name)))
    return _grpc_cluster(
        ACCESS_LOG_SINK, cluster_pb2.Cluster.STATIC, params.xds_connect_timeout, [pipe]
    )


def _admin(params: BootstrapParamsConfig, port: int) -> bootstrap_pb2.Admin:
    log = any_pb2.Any()
    log.Pack(file_pb2.FileAccessLog(path=params.admin_access_log_path))
    return bootstrap_pb2.Admin(
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=params.admin_address, port_value=port)
        ),
        access_log=[accesslog_pb2.AccessLog(name="envoy.access_loggers.file", typed_config=log)],
    )


def _node(data: BootstrapInput) -> base_pb2.Node:
    node = base_pb2.Node(id=f"{data.mesh}.{data.name}", cluster=data.service)
    # The keys services/xds/nodes.py reads.
    if data.dataplane_token_path:
        node.metadata.fields["dataplaneTokenPath"].string_value = data.dataplane_token_path
    if data.admin_port:
        node.metadata.fields["dataplane.admin.port"].string_value = str(data.admin_port)
    return node


def _dynamic_resources() -> bootstrap_pb2.Bootstrap.DynamicResources:
    ads = config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(), resource_api_version=V3
    )
    return bootstrap_pb2.Bootstrap.DynamicResources(
        lds_config=ads,
        cds_config=ads,
        ads_config=config_source_pb2.ApiConfigSource(
            api_type=config_source_pb2.ApiConfigSource.GRPC,
            transport_api_version=V3,
            grpc_services=[
                grpc_service_pb2.GrpcService(
                    envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=ADS_CLUSTER)
                )
            ],
        ),
    )


def build_bootstrap(params: BootstrapParamsConfig, data: BootstrapInput) -> bootstrap_pb2.Bootstrap:
    """`params` are the autoconfigured `bootstrapServer.params` (xdsHost/xdsPort filled in)."""
    bootstrap = bootstrap_pb2.Bootstrap(
        node=_node(data),
        dynamic_resources=_dynamic_resources(),
        static_resources=bootstrap_pb2.Bootstrap.StaticResources(
            clusters=[_ads_cluster(params), _sink_cluster(params, data.mesh, data.name)]
        ),
    )
    if data.admin_port:
        bootstrap.admin.CopyFrom(_admin(params, data.admin_port))
    return bootstrap


def to_yaml(bootstrap: bootstrap_pb2.Bootstrap) -> str:
    # Through JSON text: MessageToDict renders packed Any fields as OrderedDicts yaml cannot dump.
    return yaml.safe_dump(json.loads(json_format.MessageToJson(bootstrap)), sort_keys=False)
