"""ProxyTemplate selection (§8.3), Prometheus conditions (§8.8), and access-log formats (§8.7)."""

from __future__ import annotations

import pytest
from envoy.config.listener.v3 import listener_pb2

from kuma.resources.mesh import LoggingBackend
from services.xds.generator import GenerationError, ProxyMetadata, generate
from services.xds.generator.access_logs import LogSource, render_format
from services.xds.generator.prometheus import LISTENER as PROMETHEUS
from tests.unit.xds.helpers import snapshot

MESH = {"type": "Mesh", "name": "default"}
RAW_CLUSTER = """
'@type': type.googleapis.com/envoy.config.cluster.v3.Cluster
name: raw
connectTimeout: 1s
"""


def backend(**networking: object) -> dict:
    inbound = [{"interface": "10.0.0.1:80:8080", "tags": {"service": "backend", "version": "v1"}}]
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": "backend-1",
        "networking": {"inbound": inbound, **networking},
    }


def template(name: str, selectors: list[dict], imports: list[str], raw: bool = False) -> dict:
    conf: dict = {"imports": imports}
    if raw:
        conf["resources"] = [{"name": "r", "version": "v1", "resource": RAW_CLUSTER}]
    return {
        "type": "ProxyTemplate",
        "mesh": "default",
        "name": name,
        "selectors": [{"match": s} for s in selectors],
        "conf": conf,
    }


def clusters_with(*templates: dict) -> list[str]:
    return sorted(generate(snapshot([MESH, backend(), *templates]), "backend-1").clusters)


def test_no_template_means_default_proxy() -> None:
    assert clusters_with() == ["localhost:8080"]


def test_template_with_only_raw_resources_yields_only_them() -> None:
    assert clusters_with(template("t", [], [], raw=True)) == ["raw"]


def test_more_matching_tags_win_and_wildcards_are_not_wildcards() -> None:
    everyone = template("a", [], [])
    one_tag = template("b", [{"service": "backend"}], ["default-proxy"])
    two_tags = template("c", [{"service": "backend", "version": "v1"}], [], raw=True)
    star = template("d", [{"service": "*", "version": "v1", "x": "*"}], [])
    assert clusters_with(everyone) == []
    assert clusters_with(everyone, one_tag) == ["localhost:8080"]
    assert clusters_with(everyone, one_tag, two_tags, star) == ["raw"]


def test_unknown_profile_is_an_error() -> None:
    snap = snapshot([MESH, backend(), template("t", [], ["nope"])])
    with pytest.raises(GenerationError) as info:
        generate(snap, "backend-1")
    assert str(info.value) == 'imports[0]{name="nope"}: profile{name="nope"}: unknown profile'


PROM_MESH = {"type": "Mesh", "name": "default", "metrics": {"prometheus": {}}}


def prometheus_listener(
    mesh: dict, dp: dict, admin_port: int = 9901
) -> listener_pb2.Listener | None:
    config = generate(snapshot([mesh, dp]), "backend-1", ProxyMetadata(admin_port=admin_port))
    return config.listeners.get(PROMETHEUS)


def test_prometheus_uses_mesh_defaults() -> None:
    listener = prometheus_listener(PROM_MESH, backend())
    assert listener is not None and listener.address.socket_address.port_value == 5670


@pytest.mark.parametrize(
    "mesh, dp, admin_port",
    [
        (MESH, backend(), 9901),  # mesh has no metrics
        (PROM_MESH, backend(), 0),  # Envoy has no admin port to scrape
        (PROM_MESH, backend(outbound=[{"interface": "10.0.0.7:5670", "service": "x"}]), 9901),
        (PROM_MESH, {**backend(), "metrics": {"prometheus": {"port": 8080}}}, 9901),  # workload
        (PROM_MESH, {**backend(), "metrics": {"prometheus": {"port": 80}}}, 9901),  # inbound
    ],
)
def test_prometheus_is_skipped(mesh: dict, dp: dict, admin_port: int) -> None:
    assert prometheus_listener(mesh, dp, admin_port) is None


def test_access_log_source_address_without_matching_inbound() -> None:
    gateway = {
        "type": "Dataplane",
        "mesh": "default",
        "name": "gw",
        "networking": {"gateway": {"tags": {"service": "edge"}}},
    }
    snap = snapshot([MESH, gateway])
    fmt = render_format(
        LogSource.of(snap.dataplanes[0]),
        LoggingBackend(format="%KUMA_SOURCE_ADDRESS%|%KUMA_SOURCE_SERVICE%"),
        "db",
    )
    assert fmt == ":0|edge"
