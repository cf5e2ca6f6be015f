"""MeshSnapshot: what it keeps, the endpoint index (§8.2.4), the revision, and what the mesh's
parts share between dataplanes and snapshots."""

from __future__ import annotations

from services.xds.generator import Endpoint, MeshSnapshot, generate
from services.xds.generator.parts import Parts
from services.xds.generator.snapshot import endpoints_matching
from tests.unit.xds.helpers import resources, snapshot

MESH = {"type": "Mesh", "name": "default"}
HEALTH_CHECK = {
    "type": "HealthCheck",
    "mesh": "default",
    "name": "hc",
    "sources": [{"match": {"service": "*"}}],
    "destinations": [{"match": {"service": "redis"}}],
    "conf": {"activeChecks": {"interval": "5s", "timeout": "1s"}},
}


def dp(
    name: str, *inbound: tuple[str, dict[str, str]], mesh: str = "default", **net: object
) -> dict:
    networking = {"inbound": [{"interface": i, "tags": t} for i, t in inbound], **net}
    return {"type": "Dataplane", "mesh": mesh, "name": name, "networking": networking}


def test_endpoint_index_groups_inbounds_by_service() -> None:
    snap = snapshot(
        [
            MESH,
            dp("b", ("10.0.0.2:80:8080", {"service": "web", "v": "2"})),
            dp(
                "a",
                ("10.0.0.1:80:8080", {"service": "web", "v": "1"}),
                ("10.0.0.1:81:9090", {"service": "metrics"}),
            ),
        ]
    )
    assert snap.endpoints == {
        "web": (
            Endpoint("10.0.0.1", 80, {"service": "web", "v": "1"}),
            Endpoint("10.0.0.2", 80, {"service": "web", "v": "2"}),
        ),
        "metrics": (Endpoint("10.0.0.1", 81, {"service": "metrics"}),),
    }
    web = snap.endpoints_of("web")
    assert endpoints_matching(web, {"service": "web", "v": "2"}) == [web[1]]
    assert endpoints_matching(web, {"service": "web", "v": "*"}) == list(web)
    assert snap.endpoints_of("nothing") == ()


def test_dataplane_with_an_unparsable_inbound_contributes_no_endpoint() -> None:
    snap = snapshot(
        [
            MESH,
            dp(
                "bad",
                ("10.0.0.1:80:8080", {"service": "web"}),
                ("10.0.0.1:99999:1", {"service": "web"}),
            ),
        ]
    )
    assert snap.endpoints == {}


def test_other_meshes_and_types_are_ignored() -> None:
    items = resources(
        [
            MESH,
            {"type": "Mesh", "name": "other"},
            dp("x", ("10.0.0.9:80:80", {"service": "web"}), mesh="other"),
            dp("y", ("10.0.0.1:80:80", {"service": "web"})),
        ]
    )
    snap = MeshSnapshot.build(items[0], items)
    assert [d.name for d in snap.dataplanes] == ["y"]
    assert [e.ip for e in snap.endpoints["web"]] == ["10.0.0.1"]


def test_revision_follows_the_inputs_not_their_order() -> None:
    a, b = (
        dp("a", ("10.0.0.1:80:80", {"service": "web"})),
        dp("b", ("10.0.0.2:80:80", {"service": "x"})),
    )
    assert snapshot([MESH, a, b]).revision == snapshot([b, MESH, a]).revision
    changed = dp("b", ("10.0.0.3:80:80", {"service": "x"}))
    assert snapshot([MESH, a, b]).revision != snapshot([MESH, a, changed]).revision


def test_shared_clusters_are_built_once_per_mesh() -> None:
    outbound = [{"interface": ":10000", "service": "redis"}]
    snap = snapshot(
        [
            MESH,
            dp("redis-1", ("10.0.0.1:6379:6379", {"service": "redis"})),
            dp("backend-1", ("10.0.0.2:80:8080", {"service": "backend"}), outbound=outbound),
            dp("backend-2", ("10.0.0.3:80:8080", {"service": "backend"}), outbound=outbound),
        ]
    )
    parts = Parts()
    one, two = generate(snap, "backend-1", parts=parts), generate(snap, "backend-2", parts=parts)
    assert one.clusters["redis"] is two.clusters["redis"]
    assert one.endpoints["redis"] is two.endpoints["redis"]
    assert one.listeners["outbound:127.0.0.1:10000"] == two.listeners["outbound:127.0.0.1:10000"]
    assert parts.built_by["eds_cluster"] == 1 and parts.built_by["load_assignment"] == 1
    # Two dataplanes of one shape: their policies are chosen once.
    assert parts.built_by["select_routes"] == 1


def test_a_service_keeps_its_endpoints_while_another_service_churns() -> None:
    """Endpoint sets are per service and kept by content: a Dataplane of `web` coming and
    going does not make `redis`'s assignment new, and a moved redis endpoint does."""
    outbound = [{"interface": ":10000", "service": "redis"}]
    docs = [
        MESH,
        dp("redis-1", ("10.0.0.1:6379:6379", {"service": "redis"})),
        dp("backend-1", ("10.0.0.2:80:8080", {"service": "backend"}), outbound=outbound),
    ]
    parts = Parts()
    first = snapshot(docs)
    assignment = generate(first, "backend-1", parts=parts).endpoints["redis"]
    web = resources([dp("web-1", ("10.0.0.3:80:8080", {"service": "web"}))])
    policy = resources([HEALTH_CHECK])
    second = MeshSnapshot.build(first.mesh, [*first.dataplanes, *web, *policy], first)
    assert second.revision != first.revision
    assert second.endpoints_of("redis") is first.endpoints_of("redis")
    assert generate(second, "backend-1", parts=parts).endpoints["redis"] is assignment
    moved = resources([dp("redis-1", ("10.0.0.9:6379:6379", {"service": "redis"}))])
    third = MeshSnapshot.build(first.mesh, [*moved, first.dataplanes[0], *policy], second)
    assert generate(third, "backend-1", parts=parts).endpoints["redis"] is not assignment
    assert [e.ip for e in third.endpoints_of("redis")] == ["10.0.0.9"]


def test_unknown_dataplane_gets_an_empty_config() -> None:
    config = generate(snapshot([MESH]), "gone")
    assert list(config) == []
    assert all(v == {} for v in config.by_type_url().values())
