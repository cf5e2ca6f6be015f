"""Issue 5's acceptance test: a real Envoy 1.40 configured by the xDS service ACKs every type the
generator produces for a Dataplane that uses every feature, and real traffic flows through it.

The Dataplane under test, `web-1`, has an inbound (its workload answers `WEB`), an outbound to
`backend` split 50/50 by a TrafficRoute between `version: v1` and `v2` (each a Dataplane with its
own Envoy and workload), and an outbound to its own service `web` (back into its own inbound).
The mesh has Prometheus metrics, a file and a TCP logging backend (TrafficLogs: backend calls to
the file, web calls to TCP through kuma-dp's access-log sink), a HealthCheck with active and
passive checks on `backend`, a ProxyTemplate importing `default-proxy` plus a raw Listener whose
routes come over RDS from a raw RouteConfiguration (both in Kuma 0.3's Envoy v2 names), and a
TrafficPermission; the `mtls` case turns mTLS on (identity and CA secrets over ADS, TLS between
Envoys, RBAC on inbounds).

Transparent proxying makes every generated listener virtual: without iptables no connection can
reach them. So `web-1`'s Envoy first gets the whole configuration *with* transparent proxying,
which must be ACKed as is; then the Dataplane drops transparent proxying, a new Envoy starts for
it (see step 2 for why not the same one) and traffic is sent.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socketserver
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import json_format

from cli.kuma_dp.accesslogs import start_sink, stop_sink
from kuma.resources.registry import DATAPLANE_INSIGHT
from kuma.wiring import Core
from services.xds.ads import types
from services.xds.ads.cache import NodeSnapshot, version_of
from services.xds.ads.counters import StreamCounters
from services.xds.ads.stream import Stream
from services.xds.generator.access_logs import ACCESS_LOG_SINK
from services.xds.service import XdsService
from tests.apply import apply
from tests.xds_ads.harness import (
    Backend,
    Envoy,
    free_port,
    grpc_cluster,
    serve_tcp,
    shared_loop,
    wait_until,
)

pytestmark = pytest.mark.envoy

MESH = "default"
WEB = f"{MESH}.web-1"
SETTLE_S = 20.0  # generous: other test sessions share the two CPUs
TYPE_KEYS = {
    types.LISTENER: "listeners",
    types.CLUSTER: "clusters",
    types.ENDPOINT: "endpoints",
    types.ROUTE: "routes",
    types.SECRET: "secrets",
}
TCP_LOG_FORMAT = "%KUMA_SOURCE_SERVICE%->%KUMA_DESTINATION_SERVICE% via %UPSTREAM_HOST%"


# --- the world --------------------------------------------------------------------------------


@dataclass
class Ports:
    web_inbound: int = field(default_factory=free_port)
    out_backend: int = field(default_factory=free_port)
    out_web: int = field(default_factory=free_port)
    raw: int = field(default_factory=free_port)
    redirect: int = field(default_factory=free_port)
    metrics_web: int = field(default_factory=free_port)
    metrics_v1: int = field(default_factory=free_port)
    metrics_v2: int = field(default_factory=free_port)
    v1_inbound: int = field(default_factory=free_port)
    v2_inbound: int = field(default_factory=free_port)


# The raw resources as a Kuma 0.3 user wrote them: Envoy v2 names, the router without a config
# (kuma/resources/envoy_types.py reads them as v3; the golden cases cover the v3 form).
RAW_LISTENER = """
  '@type': type.googleapis.com/envoy.api.v2.Listener
  name: raw-http
  address: {{socketAddress: {{address: 127.0.0.1, portValue: {port}}}}}
  filterChains:
  - filters:
    - name: envoy.http_connection_manager
      typedConfig:
        '@type': type.googleapis.com/envoy.config.filter.network.http_connection_manager.v2.HttpConnectionManager
        statPrefix: raw
        rds:
          routeConfigName: raw-route
          configSource: {{ads: {{}}}}
        httpFilters: [{{name: envoy.router}}]
"""  # noqa: E501 (a type URL)

RAW_ROUTE = """
  '@type': type.googleapis.com/envoy.api.v2.RouteConfiguration
  name: raw-route
  virtualHosts:
  - name: all
    domains: ['*']
    routes:
    - match: {{prefix: /}}
      route: {{cluster: 'localhost:{workload}'}}
"""


def indent(text: str, by: int) -> str:
    return "\n".join(" " * by + line for line in text.strip("\n").splitlines())


def world(
    p: Ports,
    workloads: dict[str, int],
    log_file: Path,
    tcp_log: int,
    mtls: bool,
) -> str:
    return f"""
type: Mesh
name: {MESH}
mtls: {{enabled: {str(mtls).lower()}}}
logging:
  backends:
  - name: file
    file: {{path: {log_file}}}
  - name: logstash
    format: '{TCP_LOG_FORMAT}'
    tcp: {{address: '127.0.0.1:{tcp_log}'}}
metrics:
  prometheus: {{port: {free_port()}, path: /metrics}}
---
type: Dataplane
mesh: {MESH}
name: backend-v1
networking:
  inbound:
  - interface: 127.0.0.1:{p.v1_inbound}:{workloads["v1"]}
    tags: {{service: backend, version: v1}}
metrics:
  prometheus: {{port: {p.metrics_v1}}}
---
type: Dataplane
mesh: {MESH}
name: backend-v2
networking:
  inbound:
  - interface: 127.0.0.1:{p.v2_inbound}:{workloads["v2"]}
    tags: {{service: backend, version: v2}}
metrics:
  prometheus: {{port: {p.metrics_v2}}}
---
type: TrafficRoute
mesh: {MESH}
name: web-to-backend
sources: [{{match: {{service: web}}}}]
destinations: [{{match: {{service: backend}}}}]
conf:
- {{weight: 50, destination: {{service: backend, version: v1}}}}
- {{weight: 50, destination: {{service: backend, version: v2}}}}
---
type: TrafficLog
mesh: {MESH}
name: backend-to-file
sources: [{{match: {{service: web}}}}]
destinations: [{{match: {{service: backend}}}}]
conf: {{backend: file}}
---
type: TrafficLog
mesh: {MESH}
name: web-to-logstash
sources: [{{match: {{service: web}}}}]
destinations: [{{match: {{service: web}}}}]
conf: {{backend: logstash}}
---
type: HealthCheck
mesh: {MESH}
name: backend-checks
sources: [{{match: {{service: web}}}}]
destinations: [{{match: {{service: backend}}}}]
conf:
  activeChecks: {{interval: 1s, timeout: 1s, unhealthyThreshold: 2, healthyThreshold: 1}}
  passiveChecks: {{unhealthyThreshold: 3, penaltyInterval: 5s}}
---
type: TrafficPermission
mesh: {MESH}
name: web-to-all
sources: [{{match: {{service: web}}}}]
destinations: [{{match: {{service: backend}}}}, {{match: {{service: web}}}}]
---
type: ProxyTemplate
mesh: {MESH}
name: web-template
selectors: [{{match: {{service: web}}}}]
conf:
  imports: [default-proxy]
  resources:
  - name: raw-listener
    version: v1
    resource: |
{indent(RAW_LISTENER.format(port=p.raw), 6)}
  - name: raw-route
    version: v1
    resource: |
{indent(RAW_ROUTE.format(workload=workloads["web"]), 6)}
"""


def web_dataplane(p: Ports, workload: int, transparent: bool) -> str:
    redirect = f"  transparentProxying: {{redirectPort: {p.redirect}}}\n" if transparent else ""
    return f"""
type: Dataplane
mesh: {MESH}
name: web-1
networking:
  inbound:
  - interface: 127.0.0.1:{p.web_inbound}:{workload}
    tags: {{service: web}}
  outbound:
  - {{interface: ':{p.out_backend}', service: backend}}
  - {{interface: ':{p.out_web}', service: web}}
{redirect}metrics:
  prometheus: {{port: {p.metrics_web}}}
"""


def sink_cluster(socket_path: str) -> dict[str, Any]:
    """kuma-dp's bootstrap cluster for its access-log sink on a unix socket (spec §7.2)."""
    return grpc_cluster(ACCESS_LOG_SINK, {"pipe": {"path": socket_path}})


def expected_names(p: Ports, workload: int, mtls: bool, transparent: bool) -> dict[str, set[str]]:
    """What web-1's Envoy must hold, by type, written out independently of the generator."""
    listeners = {
        f"inbound:127.0.0.1:{p.web_inbound}",
        f"outbound:127.0.0.1:{p.out_backend}",
        f"outbound:127.0.0.1:{p.out_web}",
        "kuma:metrics:prometheus",
        "raw-http",
    }
    clusters = {
        f"localhost:{workload}",
        "backend{version=v1}",
        "backend{version=v2}",
        "web",
        "kuma:envoy:admin",
    }
    if transparent:
        listeners.add("catch_all")
        clusters.add("pass_through")
    return {
        "listeners": listeners,
        "clusters": clusters,
        "endpoints": {"backend{version=v1}", "backend{version=v2}", "web"},
        "routes": {"raw-route"},
        "secrets": {"identity_cert", "mesh_ca"} if mtls else set(),
    }


# --- helpers: a log collector, kuma-dp's sink, what the server sent ---------------------------


class LineCollector:
    """A TCP logging backend: keeps every line it receives."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        lines = self.lines

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    lines.append(raw.decode(errors="replace").rstrip("\n"))

        self.server = serve_tcp(Handler)
        self.port = self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sent:
    """What the xDS service told its streams and heard back, per node: each response (type,
    version), ACK (type) and NACK (type, message), in order. Wraps the service's metrics
    callbacks (opens, NACKs) and the streams' own counting of responses and ACKs."""

    def __init__(self, xds: XdsService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.nodes: dict[str, str] = {}  # stream id -> node id
        self.events: list[tuple[str, str, str, str]] = []  # (node, kind, type URL, detail)
        target = xds.metrics
        on_open, on_nack = target.on_open, target.on_nack
        responded, confirmed = Stream.responded, Stream.confirmed

        def record(stream_id: str, kind: str, type_url: str, detail: str = "") -> None:
            self.events.append((self.nodes.get(stream_id, ""), kind, type_url, detail))

        def opened(
            stream_id: str, node_id: str, node: Any, counters: StreamCounters | None = None
        ) -> None:
            self.nodes[stream_id] = node_id
            on_open(stream_id, node_id, node, counters)

        # Responses and ACKs are counted by the stream itself, not reported: watch it count.
        def on_responded(stream: Stream, type_url: str) -> None:
            version = stream.types[type_url].sent_version  # type: ignore[attr-defined]
            record(stream.id, "response", type_url, version)
            responded(stream, type_url)

        def on_confirmed(stream: Stream, type_url: str, accepted: bool) -> None:
            if accepted:
                record(stream.id, "ack", type_url)
            confirmed(stream, type_url, accepted)

        def nacked(stream_id: str, type_url: str, version: str, message: str) -> None:
            record(stream_id, "nack", type_url, message)
            on_nack(stream_id, type_url, version, message)

        monkeypatch.setattr(target, "on_open", opened)
        monkeypatch.setattr(target, "on_nack", nacked)
        monkeypatch.setattr(Stream, "responded", on_responded)
        monkeypatch.setattr(Stream, "confirmed", on_confirmed)

    @property
    def nacks(self) -> list[tuple[str, str, str, str]]:
        return [e for e in self.events if e[1] == "nack"]

    def stream_of(self, node_id: str) -> str:
        """The id of the node's latest stream."""
        return [s for s, n in self.nodes.items() if n == node_id][-1]

    def versions(self, node_id: str, type_url: str) -> list[str]:
        return [d for n, k, t, d in self.events if (n, k, t) == (node_id, "response", type_url)]

    def last_acked(self, node_id: str, type_url: str) -> bool:
        """Whether the latest response of the type was ACKed. (An earlier one may not be: when
        Envoy asks for more names before it has answered, the response to the new request
        supersedes it, and the ACK with the old nonce is ignored, as xDS says.)"""
        kinds = [k for n, k, t, _ in self.events if (n, t) == (node_id, type_url)]
        return "response" in kinds and kinds[-1] == "ack"


def server_snapshot(xds: XdsService, node_id: str) -> NodeSnapshot | None:
    async def get() -> NodeSnapshot | None:
        return xds.cache.get(node_id)

    return asyncio.run_coroutine_threadsafe(get(), shared_loop()).result(5)


# --- Envoy's view -----------------------------------------------------------------------------


@dataclass
class Dump:
    """Envoy's /config_dump: name -> version_info of every dynamic resource by type, the
    top-level (last accepted) LDS and CDS versions, and whatever is not settled."""

    names: dict[str, dict[str, str]]
    lds_version: str
    cds_version: str
    unsettled: list[str]
    raw: dict[str, Any]

    def listener(self, name: str) -> dict[str, Any]:
        for item in self._section("ListenersConfigDump").get("dynamic_listeners", []):
            if item["name"] == name and "active_state" in item:
                return item["active_state"]["listener"]  # type: ignore[no-any-return]
        raise KeyError(name)

    def clusters(self) -> dict[str, dict[str, Any]]:
        items = self._section("ClustersConfigDump").get("dynamic_active_clusters", [])
        return {item["cluster"]["name"]: item["cluster"] for item in items}

    def _section(self, kind: str) -> dict[str, Any]:
        return next((c for c in self.raw["configs"] if c["@type"].endswith(kind)), {})


def find_keys(data: Any, key: str, path: str = "") -> list[str]:
    """Paths of every `key` anywhere in a JSON document."""
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == key:
                found.append(f"{path}/{k}: {json.dumps(v)[:300]}")
            found += find_keys(v, key, f"{path}/{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += find_keys(v, key, f"{path}[{i}]")
    return found


def hosts(assignment: dict[str, Any]) -> str:
    """`ip:port` of every endpoint of a ClusterLoadAssignment (JSON, either case), sorted."""
    out = []
    for group in assignment.get("endpoints", []):
        for lb in group.get("lb_endpoints", group.get("lbEndpoints", [])):
            sock = lb["endpoint"]["address"]
            sock = sock.get("socket_address", sock.get("socketAddress", {}))
            out.append(f"{sock['address']}:{sock.get('port_value', sock.get('portValue'))}")
    return ",".join(sorted(out))


def read_dump(envoy: Envoy) -> Dump:
    raw = json.loads(envoy.admin("/config_dump?include_eds") or "{}")
    sections = {c["@type"].rsplit(".", 1)[-1]: c for c in raw.get("configs", [])}
    lds = sections.get("ListenersConfigDump", {})
    cds = sections.get("ClustersConfigDump", {})
    eds = sections.get("EndpointsConfigDump", {})
    rds = sections.get("RoutesConfigDump", {})
    sds = sections.get("SecretsConfigDump", {})
    listeners = lds.get("dynamic_listeners", [])
    eds_clusters = {
        item["cluster"]["name"]
        for item in cds.get("dynamic_active_clusters", [])
        if item["cluster"].get("type") == "EDS"
    }
    names = {
        "listeners": {
            item["name"]: item["active_state"].get("version_info", "")
            for item in listeners
            if "active_state" in item
        },
        "clusters": {
            item["cluster"]["name"]: item.get("version_info", "")
            for item in cds.get("dynamic_active_clusters", [])
        },
        # Envoy keeps no version per assignment: its hosts stand for it. Only EDS clusters'
        # assignments came over EDS (the dump lists those of every cluster).
        "endpoints": {
            item["endpoint_config"]["cluster_name"]: hosts(item["endpoint_config"])
            for item in eds.get("dynamic_endpoint_configs", [])
            if item["endpoint_config"]["cluster_name"] in eds_clusters
        },
        "routes": {
            item["route_config"]["name"]: item.get("version_info", "")
            for item in rds.get("dynamic_route_configs", [])
        },
        "secrets": {
            item["name"]: item.get("version_info", "")
            for item in sds.get("dynamic_active_secrets", [])
        },
    }
    unsettled = [f"warming listener {i['name']}" for i in listeners if "warming_state" in i]
    unsettled += [
        f"warming cluster {i['cluster']['name']}" for i in cds.get("dynamic_warming_clusters", [])
    ]
    unsettled += [f"warming secret {i['name']}" for i in sds.get("dynamic_warming_secrets", [])]
    return Dump(
        names, lds.get("version_info", ""), cds.get("version_info", ""), unsettled, raw or {}
    )


def rejected_stats(envoy: Envoy) -> dict[str, int]:
    """Envoy's own count of rejected updates, per subscription (CDS, LDS, each EDS, RDS, SDS)."""
    text = envoy.admin("/stats?filter=update_rejected") or ""
    out = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(": ")
        if name.endswith("update_rejected"):
            out[name] = int(value)
    return out


def check_settled(
    envoy: Envoy, xds: XdsService, sent: Sent, node_id: str, expected: dict[str, set[str]]
) -> Dump:
    """Raise unless Envoy holds exactly `expected`, at versions the server sent (LDS and CDS at
    the server's current ones), with nothing warming, rejected or in an error state."""
    assert not sent.nacks, f"NACKed: {sent.nacks}"
    snapshot = server_snapshot(xds, node_id)
    assert snapshot is not None, "no snapshot for the node yet"
    dump = read_dump(envoy)
    for type_url, key in TYPE_KEYS.items():
        served = snapshot.of(type_url).resources
        assert set(served) == expected[key], f"server has {key} {sorted(served)}"
        held = dump.names[key]
        assert set(held) == expected[key], f"Envoy holds {key} {sorted(held)}"
        versions = sent.versions(node_id, type_url)
        if expected[key]:
            # The latest response of each type carries the server's current version, ACKed...
            assert versions and versions[-1] == version_of(snapshot.of(type_url).select(None))
            assert sent.last_acked(node_id, type_url), f"{key}: latest response not ACKed"
        if type_url == types.ENDPOINT:
            # ... each assignment holds the hosts the server has for it...
            for name, packed in served.items():
                assignment = endpoint_pb2.ClusterLoadAssignment()
                packed.any.Unpack(assignment)
                want = hosts(json_format.MessageToDict(assignment))
                assert held[name] == want, f"{name}: Envoy has {held[name]}, server {want}"
            continue
        # ... and each other resource is at the version of the response that last changed it.
        stale = {n: v for n, v in held.items() if v not in versions}
        assert not stale, f"{key} at versions the server never sent: {stale}"
    current = {t: version_of(snapshot.of(t).select(None)) for t in (types.LISTENER, types.CLUSTER)}
    assert dump.lds_version == current[types.LISTENER], "LDS not at the server's version"
    assert dump.cds_version == current[types.CLUSTER], "CDS not at the server's version"
    assert not dump.unsettled, dump.unsettled
    errors = find_keys(dump.raw, "error_state")
    assert not errors, f"rejected updates in the config dump: {errors}"
    rejected = {k: v for k, v in rejected_stats(envoy).items() if v}
    assert not rejected, f"Envoy counted rejected updates: {rejected}"
    return dump


def settle(
    envoy: Envoy, xds: XdsService, sent: Sent, node_id: str, expected: dict[str, set[str]]
) -> Dump:
    return wait_until(  # type: ignore[no-any-return]
        lambda: check_settled(envoy, xds, sent, node_id, expected),
        SETTLE_S,
        f"{node_id} to hold its whole config",
    )


def http_get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
        return r.read().decode()


def refused(port: int) -> bool:
    try:
        http_get(port)
    except Exception:  # noqa: BLE001 (refused, reset, closed or not HTTP: all mean no)
        return True
    return False


def check_insight(core: Core, sent: Sent, name: str, mtls: bool, every_type: bool = True) -> Any:
    """The subscription of the dataplane's current stream: nothing rejected; with `every_type`,
    each of CDS, EDS, LDS and RDS ACKed, and SDS too (counted in `total` only) with mTLS."""
    stream = sent.stream_of(f"{MESH}.{name}")
    spec = core.manager.get(DATAPLANE_INSIGHT, MESH, name).spec
    current = [s for s in spec.subscriptions if s.id == stream]
    assert current and current[0].connected, spec.subscriptions
    status = current[0].status
    blocks = {b: getattr(status, b) for b in ("total", "cds", "eds", "lds", "rds")}
    for block, stats in blocks.items():
        assert stats.responses_rejected == 0, f"{block}: {stats}"
        assert stats.responses_acknowledged <= stats.responses_sent, f"{block}: {stats}"
        assert stats.responses_acknowledged >= 1 or not every_type, f"{block}: {stats}"
    if every_type:
        typed = sum(blocks[b].responses_acknowledged for b in ("cds", "eds", "lds", "rds"))
        sds_acks = status.total.responses_acknowledged - typed
        assert (sds_acks >= 1) if mtls else (sds_acks == 0), status
    return status


def warn_if_stale(core: Core, xds: XdsService, sent: Sent, name: str) -> None:
    """Subscriptions of streams that have ended should not stay `connected` (spec §12.2); that
    is not what this test is about, so it is reported as a warning with the server's view."""
    spec = core.manager.get(DATAPLANE_INSIGHT, MESH, name).spec
    current = sent.stream_of(f"{MESH}.{name}")
    stale = [s.id for s in spec.subscriptions if s.connected and s.id != current]
    if stale:
        live = {sid: (xds.insights._live.get(sid) is not None) for sid in stale}
        warnings.warn(
            f"{name}: ended streams still connected in its insight: {stale} "
            f"(still tracked by the recorder: {live}; "
            f"streams watched: {xds.cache.watched()})",
            stacklevel=2,
        )


# --- the test ---------------------------------------------------------------------------------


@pytest.fixture()
def started() -> Iterator[list[Callable[[], Any]]]:
    """Things to stop, last started first; Envoy logs are printed (shown when a test fails)."""
    stops: list[Callable[[], Any]] = []
    yield stops
    for stop in reversed(stops):
        out = stop()
        if isinstance(out, str):
            print(out[-6000:])


@pytest.mark.parametrize("mtls", [False, True], ids=["plaintext", "mtls"])
def test_every_feature_is_acked_and_carries_traffic(
    core: Core,
    xds: XdsService,
    monkeypatch: pytest.MonkeyPatch,
    started: list[Callable[[], Any]],
    mtls: bool,
) -> None:
    sent = Sent(xds, monkeypatch)
    p = Ports()
    workloads = {}
    for name in ("web", "v1", "v2"):
        backend = Backend(name.upper())
        started.append(backend.stop)
        workloads[name] = backend.port
    collector = LineCollector()
    started.append(collector.stop)
    tmp = tempfile.TemporaryDirectory(prefix="every-feature-")
    started.append(tmp.cleanup)
    log_file = Path(tmp.name) / "access.log"
    sink_path = str(Path(tmp.name) / "sink.sock")
    loop = shared_loop()
    sink = asyncio.run_coroutine_threadsafe(start_sink(sink_path), loop).result(10)
    started.append(
        lambda: asyncio.run_coroutine_threadsafe(stop_sink(sink, sink_path), loop).result(10)
    )

    apply(core, world(p, workloads, log_file, collector.port, mtls))
    apply(core, web_dataplane(p, workloads["web"], transparent=True))

    def envoy(name: str, **kwargs: Any) -> Envoy:
        proxy = Envoy(
            f"{MESH}.{name}", xds.port, admin_metadata=True, ca_pem=xds.cert_pem, **kwargs
        )
        started.append(proxy.stop)
        return proxy

    for name in ("backend-v1", "backend-v2"):
        envoy(name)
    web_args: dict[str, Any] = {
        "clusters": [sink_cluster(sink_path)],
        "args": ["--file-flush-interval-msec", "100"],  # access-log lines without delay
    }
    web = envoy("web-1", **web_args)

    # 1. Everything at once, transparent proxying included: ACKed, nothing rejected.
    dump = settle(web, xds, sent, WEB, expected_names(p, workloads["web"], mtls, True))
    catch_all = dump.listener("catch_all")
    assert catch_all["use_original_dst"] is True
    assert [f["name"] for f in catch_all["listener_filters"]] == [
        "envoy.filters.listener.original_dst"
    ]
    for name in dump.names["listeners"]:
        if name.startswith(("inbound:", "outbound:", "kuma:")):  # virtual: not bound
            assert dump.listener(name)["bind_to_port"] is False, name
    assert refused(p.out_backend) and refused(p.web_inbound)
    # The raw listener is not generated, so it binds; its routes came over RDS.
    assert wait_until(lambda: http_get(p.raw) == "WEB", 10, "raw listener -> raw route")

    # 2. The same without transparent proxying, so that listeners bind their ports: on a new
    # Envoy, as after a restart of the dataplane. (Envoy 1.40 accepts a listener update from
    # `bind_to_port: false` to true but keeps the old, unbound socket factory: it decides on
    # reusing sockets by address alone. So a live Envoy never binds the ports.)
    web.stop()
    apply(core, web_dataplane(p, workloads["web"], transparent=False))
    web = envoy("web-1", **web_args)
    dump = settle(web, xds, sent, WEB, expected_names(p, workloads["web"], mtls, False))
    inbound = dump.listener(f"inbound:127.0.0.1:{p.web_inbound}")
    filters = [f["name"] for f in inbound["filter_chains"][0]["filters"]]
    clusters = dump.clusters()
    for version in ("v1", "v2"):
        cluster = clusters[f"backend{{version={version}}}"]
        assert "tcp_health_check" in cluster["health_checks"][0], cluster
        assert cluster["outlier_detection"]["consecutive_5xx"] == 3, cluster
        assert ("transport_socket" in cluster) is mtls, cluster
    if mtls:  # RBAC first, TLS required; Envoy holds web's SPIFFE identity
        assert filters == ["envoy.filters.network.rbac", "envoy.filters.network.tcp_proxy"]
        assert "transport_socket" in inbound["filter_chains"][0]
        assert "spiffe://default/web" in (web.admin("/certs") or "")
    else:
        assert filters == ["envoy.filters.network.tcp_proxy"]

    # 3. Traffic. Inbound: a plain client reaches the workload unless mTLS requires a client
    # certificate. Outbound to web: back into web-1's own inbound (over mTLS when on).
    if mtls:
        assert refused(p.web_inbound)
    else:
        assert wait_until(lambda: http_get(p.web_inbound) == "WEB", 10, "inbound -> workload")
    assert wait_until(lambda: http_get(p.out_web) == "WEB", 10, "outbound web -> inbound")
    # Outbound to backend: the 50/50 split reaches both versions (each through its own Envoy's
    # inbound), once the active health checks have passed.
    seen: list[str] = []

    def both_versions() -> bool:
        seen.append(http_get(p.out_backend))
        return {"V1", "V2"} <= set(seen)

    wait_until(both_versions, 15, "both backend versions through the weighted route")
    assert set(seen) == {"V1", "V2"}
    # The active checks ran (and passed) on both clusters.
    checks = web.admin("/stats?filter=health_check.success") or ""
    for version in ("v1", "v2"):
        stat = f"cluster.backend{{version={version}}}.health_check.success: "
        assert any(
            line.startswith(stat) and not line.endswith(" 0") for line in checks.splitlines()
        ), checks
    assert http_get(p.raw) == "WEB"

    # 4. Access logs: one file line per backend connection, TCP lines via kuma-dp's sink.
    def file_lines() -> list[str]:
        text = log_file.read_text() if log_file.exists() else ""
        lines = [line for line in text.splitlines() if "(web)->" in line]
        return lines if len(lines) >= len(seen) else []

    lines = wait_until(file_lines, 10, "file access-log lines")
    assert all(line.endswith("bytes") and "(backend)" in line for line in lines), lines
    upstreams = {f"127.0.0.1:{p.v1_inbound}", f"127.0.0.1:{p.v2_inbound}"}
    assert {u for u in upstreams if any(u in line for line in lines)} == upstreams, lines
    tcp_line = f"web->web via 127.0.0.1:{p.web_inbound}"
    wait_until(lambda: tcp_line in collector.lines, 10, f"TCP access-log line {tcp_line!r}")
    # Nothing logs the backend calls to TCP or the web calls to the file.
    assert all("backend" not in line for line in collector.lines), collector.lines

    # 5. Prometheus: Envoy's stats on the dataplane's own port and the mesh's path.
    metrics = http_get(p.metrics_web, "/metrics")
    assert "envoy_cluster_upstream_cx_total" in metrics
    assert 'envoy_cluster_name="backend{version=v1}"' in metrics

    # 6. The server's record: every response of every type ACKed, none rejected, for every
    # Envoy of the mesh.
    status = wait_until(lambda: check_insight(core, sent, "web-1", mtls), 10, "web-1's insight")
    print(f"web-1 insight: {status}")
    for name in ("backend-v1", "backend-v2"):
        check = functools.partial(check_insight, core, sent, name, mtls, every_type=False)
        wait_until(check, 10, f"{name}'s insight")
        for type_url in (types.CLUSTER, types.LISTENER, *((types.SECRET,) if mtls else ())):
            assert sent.last_acked(f"{MESH}.{name}", type_url), (name, type_url)
    assert not sent.nacks, sent.nacks
    warn_if_stale(core, xds, sent, "web-1")
    check_settled(web, xds, sent, WEB, expected_names(p, workloads["web"], mtls, False))
