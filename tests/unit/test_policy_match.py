"""Most specific policy selection (spec §8.9)."""

from __future__ import annotations

from kuma.policy_match import most_specific
from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.registry import decode_spec


def dataplane(*tag_sets: dict[str, str]) -> DataplaneSpec:
    inbound = [
        {"interface": f"10.0.0.1:{80 + i}:{8080 + i}", "tags": t} for i, t in enumerate(tag_sets)
    ]
    return decode_spec("Dataplane", {"networking": {"inbound": inbound}})


def route(name: str, source: dict[str, str], destination: dict[str, str]) -> Resource:
    spec = decode_spec(
        "TrafficRoute",
        {
            "sources": [{"match": source}],
            "destinations": [{"match": destination}],
            "conf": [{"weight": 100, "destination": destination}],
        },
    )
    return Resource("TrafficRoute", "default", name, spec)


BACKEND = dataplane({"service": "backend", "version": "v1"})


def chosen(policies: list[Resource], services: tuple[str, ...] = ("redis",)) -> dict[str, str]:
    return {s: p.name for s, p in most_specific(BACKEND, services, policies).items()}


def test_exact_destination_beats_wildcard() -> None:
    policies = [
        route("b-exact", {"service": "*"}, {"service": "redis"}),
        route("a-wild", {"service": "*"}, {"service": "*"}),
    ]
    assert chosen(policies) == {"redis": "b-exact"}


def test_more_source_tags_win() -> None:
    policies = [
        route("a", {"service": "backend"}, {"service": "redis"}),
        route("b", {"service": "backend", "version": "v1"}, {"service": "redis"}),
    ]
    assert chosen(policies) == {"redis": "b"}


def test_exact_beats_wildcard_of_same_size() -> None:
    policies = [
        route("a", {"service": "*"}, {"service": "redis"}),
        route("b", {"service": "backend"}, {"service": "redis"}),
    ]
    assert chosen(policies) == {"redis": "b"}


def test_tie_keeps_alphabetically_first() -> None:
    policies = [
        route("z", {"service": "backend"}, {"service": "redis"}),
        route("m", {"service": "backend"}, {"service": "redis"}),
    ]
    assert chosen(policies) == {"redis": "m"}


def test_non_matching_sources_and_destinations_are_ignored() -> None:
    policies = [
        route("a", {"service": "web"}, {"service": "redis"}),
        route("b", {"service": "backend"}, {"service": "db"}),
        route("c", {"service": "backend", "version": "v2"}, {"service": "*"}),
    ]
    assert chosen(policies, ("redis", "db")) == {"db": "b"}


def test_source_rank_is_best_matching_selector_over_any_inbound() -> None:
    two = dataplane({"service": "backend"}, {"service": "metrics", "team": "infra"})
    spec = decode_spec(
        "TrafficRoute",
        {
            "sources": [
                {"match": {"service": "backend"}},
                {"match": {"service": "metrics", "team": "infra"}},
            ],
            "destinations": [{"match": {"service": "redis"}}],
            "conf": [{"weight": 1, "destination": {"service": "redis"}}],
        },
    )
    rich = Resource("TrafficRoute", "default", "z-rich", spec)
    plain = route("a-plain", {"service": "metrics"}, {"service": "redis"})
    assert most_specific(two, ["redis"], [plain, rich])["redis"].name == "z-rich"
