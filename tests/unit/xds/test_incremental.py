"""Incremental generation gives exactly what generating from scratch gives.

Each mesh's build (services/xds/build.py) keeps the parts generation built between passes
(generator.parts), unchanged resources' objects between mesh snapshots, packed messages between
revisions, and each node's last snapshot with what it was made from. After every write of a
sequence touching each input a part reads (dataplanes, routes, logs, health checks, templates,
Prometheus, transparent proxying, mTLS and permissions), every node's snapshot must equal, byte
for byte, a generation without any of that; and a change that touches one part only must not
rebuild the others, nor touch the nodes it does not reach.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import yaml
from envoy.config.core.v3 import base_pb2

from kuma.resources.base import Resource
from kuma.store.memory import MemoryStore
from services.xds.ads.cache import NodeSnapshot, Packed, SnapshotCache
from services.xds.ads.stream import Inbox
from services.xds.ads.types import CLUSTER, LISTENER
from services.xds.build import MeshBuild
from services.xds.generator import MeshSnapshot, generate
from services.xds.generator.security import mesh_mtls
from services.xds.nodes import metadata_of
from services.xds.reconciler import Reconciler
from tests.unit.xds.helpers import resources

NODES = ["default.web-1", "default.backend-1", "default.backend-2", "default.redis-1"]
ADMIN_PORT = 9901


def dataplane(name: str, ip: str, service: str, version: str = "", extra: str = "") -> str:
    """A Dataplane with one inbound (`ip`:8080) tagged `service` (and `version`), plus `extra`
    networking lines."""
    tags = {"service": service, **({"version": version} if version else {})}
    inbound = {"interface": f"{ip}:8080:80", "tags": tags}
    head = {"type": "Dataplane", "mesh": "default", "name": name}
    return (
        yaml.safe_dump(head)
        + "networking:\n  inbound: "
        + yaml.safe_dump([inbound], default_flow_style=True)
        + extra
    )


WEB_OUTBOUNDS = """  outbound:
  - {interface: ':10001', service: backend}
  - {interface: ':10002', service: redis}
"""
MESH = "type: Mesh\nname: default\n"
MESH_LOGS_METRICS = """type: Mesh
name: default
logging:
  backends:
  - {name: file, file: {path: /tmp/access.log}}
metrics:
  prometheus: {port: 5670, path: /metrics}
"""
MESH_MTLS = MESH_LOGS_METRICS + "mtls:\n  enabled: true\n  ca: {builtin: {}}\n"
HEALTH_CHECK = """type: HealthCheck
mesh: default
name: backend-hc
sources: [{match: {service: '*'}}]
destinations: [{match: {service: backend}}]
conf:
  activeChecks: {interval: %ds, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 1}
"""
ROUTE = """type: TrafficRoute
mesh: default
name: web-to-backend
sources: [{match: {service: web}}]
destinations: [{match: {service: backend}}]
conf:
- {weight: %d, destination: {service: backend, version: v1}}
- {weight: 10, destination: {service: backend, version: v2}}
"""
LOG = """type: TrafficLog
mesh: default
name: all
sources: [{match: {service: '*'}}]
destinations: [{match: {service: '*'}}]
conf: {backend: file}
"""
PERMISSION = """type: TrafficPermission
mesh: default
name: web-to-%s
sources: [{match: {service: web}}]
destinations: [{match: {service: %s}}]
"""
TEMPLATE = """type: ProxyTemplate
mesh: default
name: web-extra
selectors: [{match: {service: web}}]
conf:
  imports: [default-proxy]
  resources:
  - name: extra
    version: v1
    resource: |
      '@type': type.googleapis.com/envoy.config.cluster.v3.Cluster
      name: extra
      type: STATIC
      connectTimeout: %ds
"""


def one(text: str) -> Resource:
    return resources([yaml.safe_load(text)])[0]


class Mesh:
    """A memory store, a reconciler on it, and every node watched as if its Envoy were open."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = MemoryStore()
        self.cache = SnapshotCache()
        self.reconciler = Reconciler(self.store, self.cache, self.loop, mtls=mesh_mtls)
        node = base_pb2.Node()
        node.metadata.fields["dataplane.admin.port"].string_value = str(ADMIN_PORT)
        self.node = node
        for i, node_id in enumerate(NODES):
            self.cache.watch(node_id, Inbox(1))
            self.reconciler.on_open(f"s{i}", node_id, node)

    def write(self, text: str) -> None:
        res = one(text)
        try:
            current = self.store.get(res.type, res.mesh, res.name)
        except Exception:
            self.store.create(res)
        else:
            self.store.update(replace(res, version=current.version))
        self.settle()

    def delete(self, type_: str, name: str) -> None:
        self.store.delete(type_, "default", name)
        self.settle()

    def settle(self) -> None:
        self.reconciler.mark("default")
        self.loop.run_until_complete(self.reconciler.reconcile())

    def from_scratch(self, node_id: str) -> dict[str, dict[str, str]]:
        items: list[Any] = [
            r
            for t in (
                "Dataplane",
                "TrafficRoute",
                "TrafficLog",
                "HealthCheck",
                "ProxyTemplate",
                "TrafficPermission",
            )
            for r in self.store.list(t, "default").items
        ]
        snap = MeshSnapshot.build(self.store.get("Mesh", "default", "default"), items)
        config = generate(snap, node_id.split(".", 1)[1], metadata_of(self.node), mesh_mtls(snap))
        return versions(NodeSnapshot.build(config.by_type_url()))

    def build(self) -> MeshBuild:
        return self.reconciler._meshes["default"]


def versions(snapshot: NodeSnapshot | None) -> dict[str, dict[str, str]]:
    assert snapshot is not None
    return {
        t: {name: p.version for name, p in s.resources.items()}
        for t, s in snapshot.types.items()
        if s.resources
    }


@pytest.fixture
def mesh():
    m = Mesh()
    yield m
    m.loop.close()


def assert_same_as_from_scratch(mesh: Mesh) -> None:
    for node_id in NODES:
        assert versions(mesh.cache.get(node_id)) == mesh.from_scratch(node_id), node_id


def test_every_step_equals_a_generation_from_scratch(mesh):
    steps = [
        lambda: mesh.write(MESH),
        lambda: mesh.write(dataplane("backend-1", "10.0.0.2", "backend", "v1")),
        lambda: mesh.write(dataplane("backend-2", "10.0.0.3", "backend", "v2")),
        lambda: mesh.write(dataplane("redis-1", "10.0.0.4", "redis")),
        lambda: mesh.write(dataplane("web-1", "10.0.0.1", "web", extra=WEB_OUTBOUNDS)),
        lambda: mesh.write(HEALTH_CHECK % 10),
        lambda: mesh.write(HEALTH_CHECK % 7),
        lambda: mesh.write(ROUTE % 90),
        lambda: mesh.write(ROUTE % 50),
        lambda: mesh.write(MESH_LOGS_METRICS),  # Prometheus listener, a log backend
        lambda: mesh.write(LOG),
        lambda: mesh.write(MESH_LOGS_METRICS.replace("/tmp/access.log", "/tmp/other.log")),
        lambda: mesh.write(MESH_LOGS_METRICS),
        lambda: mesh.write(dataplane("backend-2", "10.0.0.5", "backend", "v2")),  # endpoint moves
        lambda: mesh.write(
            dataplane(
                "web-1",
                "10.0.0.1",
                "web",
                extra=WEB_OUTBOUNDS + "  transparentProxying: {redirectPort: 15001}\n",
            )
        ),
        lambda: mesh.write(MESH_MTLS),
        lambda: mesh.write(PERMISSION % ("backend", "backend")),
        lambda: mesh.write(PERMISSION % ("redis", "redis")),
        lambda: mesh.delete("TrafficPermission", "web-to-backend"),
        lambda: mesh.write(TEMPLATE % 1),
        lambda: mesh.write(TEMPLATE % 2),
        lambda: mesh.delete("TrafficRoute", "web-to-backend"),
        lambda: mesh.delete("Dataplane", "backend-2"),
        lambda: mesh.write(MESH_LOGS_METRICS),  # mTLS off again
        lambda: mesh.delete("TrafficLog", "all"),
    ]
    for step in steps:
        step()
        assert_same_as_from_scratch(mesh)


def test_a_health_check_change_rebuilds_no_listener(mesh, monkeypatch):
    mesh.write(MESH_LOGS_METRICS)
    for name, ip, service in [
        ("backend-1", "10.0.0.2", "backend"),
        ("redis-1", "10.0.0.4", "redis"),
    ]:
        mesh.write(dataplane(name, ip, service))
    mesh.write(dataplane("web-1", "10.0.0.1", "web", extra=WEB_OUTBOUNDS))
    mesh.write(HEALTH_CHECK % 10)
    before = Counter(mesh.build().parts.built_by)
    stats = replace(mesh.build().stats)
    packed: list[str] = []
    pack = Packed.of.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        Packed, "of", classmethod(lambda cls, name, m: packed.append(name) or pack(cls, name, m))
    )

    mesh.write(HEALTH_CHECK % 7)

    # Only the choice of health checks is made again, once per dataplane shape, the choices of
    # web-1's shape (the one it changes), the one cluster it changes, the clusters of web-1's
    # outbound side (and the pair of its clusters and listeners) and web-1's clusters answer:
    # routes, logs, inbound and outbound listeners, the dataplanes' own parts (inbound,
    # Prometheus, transparent) and the redis cluster are reused.
    built = Counter(mesh.build().parts.built_by) - before
    assert built == {
        "select_health_checks": 3,
        "Choices": 1,
        "eds_cluster": 1,
        "clusters": 1,
        "side_config": 1,
        "TypeSnapshot.of": 1,
    }, built
    # The new backend cluster, serialized once; nothing else again.
    assert packed == ["backend"]
    # Only web-1, which calls backend and redis, got a new config; the others were answered
    # with their last one.
    assert mesh.build().stats.generated == stats.generated + 1
    assert mesh.build().stats.unchanged == stats.unchanged + len(NODES) - 1
    assert_same_as_from_scratch(mesh)


def test_node_metadata_belongs_to_the_newest_open_stream_and_leaves_with_it(mesh):
    """A second stream of web-1 claiming to be proxyless (gRPC's client) changes web-1's config
    while it is open; when it closes, the first stream's Envoy config comes back. (Both
    streams were authenticated as web-1: services/xds/auth.py.)"""
    mesh.write(MESH)
    mesh.write(dataplane("backend-1", "10.0.0.2", "backend"))
    mesh.write(dataplane("web-1", "10.0.0.1", "web", extra=WEB_OUTBOUNDS))
    envoy = versions(mesh.cache.get("default.web-1"))
    impostor = base_pb2.Node(id="default.web-1")
    impostor.metadata.fields["dataplane.proxyless"].bool_value = True
    mesh.reconciler.on_open("second", "default.web-1", impostor)
    proxyless = versions(mesh.cache.get("default.web-1"))
    assert proxyless != envoy
    mesh.reconciler.on_close("second")
    assert versions(mesh.cache.get("default.web-1")) == envoy


def test_nodes_with_equal_answers_share_them(mesh):
    """backend-1 and redis-1 have the same clusters (one local cluster on port 80): one answer
    object, selected and versioned once for both; their listeners (own addresses) differ."""
    mesh.write(MESH)
    mesh.write(dataplane("backend-1", "10.0.0.2", "backend"))
    mesh.write(dataplane("redis-1", "10.0.0.4", "redis"))
    backend, redis = (mesh.cache.get(f"default.{n}-1") for n in ("backend", "redis"))
    assert backend is not None and redis is not None
    assert backend.of(CLUSTER) is redis.of(CLUSTER)
    assert backend.of(LISTENER) is not redis.of(LISTENER)
