"""The Envoy v3 bootstrap of one Dataplane (spec §7.2), as a pure function of its inputs.

Built as a typed `Bootstrap` message (so a wrong field fails here, not in Envoy) and rendered as
YAML of its protobuf-JSON form, which is what Kuma served.

The ADS connection uses Envoy's Google gRPC client rather than a cluster (Kuma's `ads_cluster`),
because only that client can carry per-call credentials read from a file:
- TLS, trusting the CA kuma-dp was given, else the control plane's own certificate;
- the dataplane token as `authorization: Bearer ...`, read by Envoy from kuma-dp's copy of the
  token file at each new stream: a renewed token is used at the next reconnect with no restart,
  and the token itself never appears in the bootstrap or in Envoy's `/config_dump`;
- several xDS replicas: one target listing them (or a DNS name resolving to all of them), the
  address list shuffled so that sidecars spread over the replicas and fail over to the others.
gRPC sends call credentials only over TLS: with `xdsServer.tlsEnabled: false` no token goes out.
"""

from __future__ import annotations

import ipaddress
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
from envoy.config.grpc_credential.v3 import file_based_metadata_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2, duration_pb2, json_format

from kuma.config import BootstrapParamsConfig
from kuma.netutil import host_ports

ADS_STAT_PREFIX = "ads"
FILE_CREDENTIALS = "envoy.grpc_credentials.file_based_metadata"
# pick_first over a shuffled list: each sidecar holds one stream, to a random replica
ADS_SERVICE_CONFIG = '{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}'
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
    # where kuma-dp keeps the token on the dataplane's host ("": none is sent)
    dataplane_token_path: str = ""
    # the CA (PEM) the xDS server's certificate must chain to; "" = plaintext ADS
    xds_ca_pem: str = ""
    # the unix socket kuma-dp serves access logs on, in a directory of its own; "": Kuma 0.3's
    # name in /tmp (for callers other than kuma-dp)
    access_log_socket: str = ""


def default_access_log_socket(mesh: str, name: str) -> str:
    """Kuma 0.3's name of the access-log socket (spec §7.2), used when the request names none."""
    return f"/tmp/kuma-access-logs-{name}-{mesh}.sock"


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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def ads_target(hosts: str, default_port: int) -> tuple[str, str]:
    """(gRPC target URI, the name the server's certificate must carry) for `xdsHost`: one
    `host[:port]` (a DNS name may resolve to every replica), or IP literals of one family,
    which gRPC takes as an `ipv4:`/`ipv6:` list (config validation refuses anything else)."""
    addresses = host_ports(hosts, default_port)
    host, port = addresses[0]
    if len(addresses) == 1:
        if ":" in host:
            return f"[{host}]:{port}", host
        # `dns:///` spelled out: gRPC reads `xds:5678` as its own `xds:` scheme
        return (f"{host}:{port}" if _is_ip(host) else f"dns:///{host}:{port}"), host
    if ":" in host:
        return "ipv6:" + ",".join(f"[{h}]:{p}" for h, p in addresses), host
    return "ipv4:" + ",".join(f"{h}:{p}" for h, p in addresses), host


def _channel_args(
    args: dict[str, str | int],
) -> grpc_service_pb2.GrpcService.GoogleGrpc.ChannelArgs:
    Value = grpc_service_pb2.GrpcService.GoogleGrpc.ChannelArgs.Value  # noqa: N806
    return grpc_service_pb2.GrpcService.GoogleGrpc.ChannelArgs(
        args={
            k: Value(string_value=v) if isinstance(v, str) else Value(int_value=v)
            for k, v in args.items()
        }
    )


def ads_grpc_service(
    hosts: str, default_port: int, ca_pem: str = "", token_path: str = ""
) -> grpc_service_pb2.GrpcService:
    """Envoy's gRPC client to the xDS servers `hosts` (`xdsHost`): TLS trusting `ca_pem` unless
    it is empty, and the token file at `token_path` sent as a bearer token on each stream."""
    target, server_name = ads_target(hosts, default_port)
    args: dict[str, str | int] = {
        "grpc.service_config": ADS_SERVICE_CONFIG,
        "grpc.keepalive_time_ms": 30_000,
        "grpc.keepalive_timeout_ms": 10_000,
    }
    client = grpc_service_pb2.GrpcService.GoogleGrpc(target_uri=target, stat_prefix=ADS_STAT_PREFIX)
    if ca_pem:
        client.channel_credentials.ssl_credentials.root_certs.inline_string = ca_pem
        args["grpc.ssl_target_name_override"] = server_name
        if token_path:
            token = file_based_metadata_pb2.FileBasedMetadataConfig(header_prefix="Bearer ")
            token.secret_data.filename = token_path
            plugin = client.call_credentials.add().from_plugin
            plugin.name = FILE_CREDENTIALS
            plugin.typed_config.Pack(token)
            client.credentials_factory_name = FILE_CREDENTIALS
    client.channel_args.CopyFrom(_channel_args(args))
    return grpc_service_pb2.GrpcService(google_grpc=client)


def _sink_cluster(params: BootstrapParamsConfig, data: BootstrapInput) -> cluster_pb2.Cluster:
    path = data.access_log_socket or default_access_log_socket(data.mesh, data.name)
    pipe = address_pb2.Address(pipe=address_pb2.Pipe(path=path))
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
    if data.admin_port:
        node.metadata.fields["dataplane.admin.port"].string_value = str(data.admin_port)
    return node


def _dynamic_resources(
    params: BootstrapParamsConfig, data: BootstrapInput
) -> bootstrap_pb2.Bootstrap.DynamicResources:
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
                ads_grpc_service(
                    params.xds_host, params.xds_port, data.xds_ca_pem, data.dataplane_token_path
                )
            ],
        ),
    )


def build_bootstrap(params: BootstrapParamsConfig, data: BootstrapInput) -> bootstrap_pb2.Bootstrap:
    """`params` are the autoconfigured `bootstrapServer.params` (xdsHost/xdsPort filled in)."""
    bootstrap = bootstrap_pb2.Bootstrap(
        node=_node(data),
        dynamic_resources=_dynamic_resources(params, data),
        static_resources=bootstrap_pb2.Bootstrap.StaticResources(
            clusters=[_sink_cluster(params, data)]
        ),
    )
    if data.admin_port:
        bootstrap.admin.CopyFrom(_admin(params, data.admin_port))
    return bootstrap


def to_yaml(bootstrap: bootstrap_pb2.Bootstrap) -> str:
    # Through JSON text: MessageToDict renders packed Any fields as OrderedDicts yaml cannot dump.
    return yaml.safe_dump(json.loads(json_format.MessageToJson(bootstrap)), sort_keys=False)
