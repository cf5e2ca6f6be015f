"""MeshSnapshot: what it keeps, the endpoint index (§8.2.4), the revision and the shared cache."""

from __future__ import annotations

from services.xds.generator import Endpoint, MeshSnapshot, generate
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
    assert snap.endpoints_matching({"service": "web", "v": "2"}) == [snap.endpoints["web"][1]]
    assert snap.endpoints_matching({"service": "web", "v": "*"}) == list(snap.endpoints["web"])


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


def test_shared_clusters_are_built_once_per_snapshot() -> None:
    outbound = [{"interface": ":10000", "service": "redis"}]
    snap = snapshot(
        [
            MESH,
            dp("redis-1", ("10.0.0.1:6379:6379", {"service": "redis"})),
            dp("backend-1", ("10.0.0.2:80:8080", {"service": "backend"}), outbound=outbound),
            dp("backend-2", ("10.0.0.3:80:8080", {"service": "backend"}), outbound=outbound),
        ]
    )
    one, two = generate(snap, "backend-1"), generate(snap, "backend-2")
    assert one.clusters["redis"] is two.clusters["redis"]
    assert one.endpoints["redis"] is two.endpoints["redis"]
    assert one.listeners["outbound:127.0.0.1:10000"] == two.listeners["outbound:127.0.0.1:10000"]
    assert len(snap.shared) == 1 and len(snap.by_endpoints) == 1


def test_endpoint_assignments_carry_over_while_the_dataplanes_are_the_same() -> None:
    outbound = [{"interface": ":10000", "service": "redis"}]
    docs = [
        MESH,
        dp("redis-1", ("10.0.0.1:6379:6379", {"service": "redis"})),
        dp("backend-1", ("10.0.0.2:80:8080", {"service": "backend"}), outbound=outbound),
    ]
    first = snapshot(docs)
    assignment = generate(first, "backend-1").endpoints["redis"]
    policy = resources([HEALTH_CHECK])
    second = MeshSnapshot.build(first.mesh, [*first.dataplanes, *policy], first)
    assert second.revision != first.revision
    assert generate(second, "backend-1").endpoints["redis"] is assignment
    moved = resources([dp("redis-1", ("10.0.0.9:6379:6379", {"service": "redis"}))])
    third = MeshSnapshot.build(first.mesh, [*moved, first.dataplanes[0], *policy], second)
    assert generate(third, "backend-1").endpoints["redis"] is not assignment


def test_unknown_dataplane_gets_an_empty_config() -> None:
    config = generate(snapshot([MESH]), "gone")
    assert list(config) == []
    assert all(v == {} for v in config.by_type_url().values())
