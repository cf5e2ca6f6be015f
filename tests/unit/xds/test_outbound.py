"""TrafficRoute splits and cluster names (§8.6), and generation errors."""

from __future__ import annotations

import pytest

from kuma.resources.policies import WeightedDestination
from services.xds.generator import GenerationError, generate
from services.xds.generator.context import Route
from services.xds.generator.outbound import Split, cluster_name, splits
from tests.unit.xds.helpers import snapshot


def test_cluster_name_appends_sorted_extra_tags() -> None:
    assert cluster_name({"service": "db"}) == "db"
    assert cluster_name({"version": "2", "service": "db", "role": "master"}) == (
        "db{role=master,version=2}"
    )


def wd(weight: int, **tags: str) -> WeightedDestination:
    return WeightedDestination(weight=weight, destination=tags)


def test_splits_skip_zero_weights_and_merge_same_cluster() -> None:
    route = Route(
        "r",
        (
            wd(10, service="db", role="a"),
            wd(0, service="db", role="b"),
            wd(5, role="a", service="db"),
            wd(1, service="db"),
        ),
    )
    assert splits(route) == [
        Split("db{role=a}", 15, {"service": "db", "role": "a"}),
        Split("db", 1, {"service": "db"}),
    ]


def test_implicit_route_goes_to_the_service() -> None:
    assert splits(Route.implicit("redis")) == [Split("redis", 100, {"service": "redis"})]


def test_split_without_service_is_an_error() -> None:
    with pytest.raises(GenerationError) as info:
        splits(Route("r", (wd(1, service="db"), wd(1, role="x", version="1"))))
    assert str(info.value) == (
        'trafficroute{name="r"}.conf[1].destination: mandatory tag "service" is missing: '
        "map[role:x version:1]"
    )


def caller(outbound: list[dict], *extra: dict) -> list[dict]:
    return [
        {"type": "Mesh", "name": "default"},
        {
            "type": "Dataplane",
            "mesh": "default",
            "name": "backend-1",
            "networking": {
                "inbound": [{"interface": "10.0.0.1:80:8080", "tags": {"service": "backend"}}],
                "outbound": outbound,
            },
        },
        *extra,
    ]


def test_invalid_outbound_interface_is_an_error() -> None:
    snap = snapshot(caller([{"interface": "nope", "service": "redis"}]))
    with pytest.raises(
        GenerationError, match=r'outbound\[0\].interface: value is not valid: "nope"'
    ):
        generate(snap, "backend-1")


def test_route_with_only_zero_weights_is_an_error() -> None:
    route = {
        "type": "TrafficRoute",
        "mesh": "default",
        "name": "zero",
        "sources": [{"match": {"service": "*"}}],
        "destinations": [{"match": {"service": "*"}}],
        "conf": [{"weight": 0, "destination": {"service": "redis"}}],
    }
    snap = snapshot(caller([{"interface": ":1000", "service": "redis"}], route))
    with pytest.raises(GenerationError, match="zero"):
        generate(snap, "backend-1")


def test_outbounds_sharing_a_cluster_emit_it_once() -> None:
    snap = snapshot(
        caller(
            [{"interface": ":1000", "service": "redis"}, {"interface": ":1001", "service": "redis"}]
        )
    )
    config = generate(snap, "backend-1")
    assert sorted(config.clusters) == ["localhost:8080", "redis"]
    assert sorted(config.listeners) == [
        "inbound:10.0.0.1:80",
        "outbound:127.0.0.1:1000",
        "outbound:127.0.0.1:1001",
    ]
