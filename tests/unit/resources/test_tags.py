"""Tag helpers of spec §3.3: matching with `*`, rank, tag-set string, identifying service."""

from __future__ import annotations

import pytest

from kuma.resources import registry
from kuma.resources.selectors import Rank, matches, rank


@pytest.mark.parametrize(
    "selector, tags, ok",
    [
        ({}, {"service": "a"}, True),
        ({"service": "a"}, {"service": "a", "version": "v1"}, True),
        ({"service": "*"}, {"service": "b"}, True),
        ({"service": "*"}, {"version": "v1"}, False),
        ({"service": "a", "version": "v2"}, {"service": "a", "version": "v1"}, False),
        ({"service": "a"}, {}, False),
    ],
)
def test_matches(selector, tags, ok):
    assert matches(selector, tags) is ok


def test_rank_ordering_and_addition():
    assert rank({"service": "a", "version": "*"}) == Rank(1, 1)
    assert rank({}) == Rank(0, 0)
    assert rank({"a": "1"}) + rank({"b": "*"}) == Rank(1, 1)
    ordered = sorted([Rank(0, 2), Rank(2, 0), Rank(1, 0), Rank(1, 1)], key=Rank.sort_key)
    assert ordered == [Rank(1, 0), Rank(0, 2), Rank(1, 1), Rank(2, 0)]


DP = registry.decode_spec(
    "Dataplane",
    {
        "networking": {
            "inbound": [
                {"interface": "1.1.1.1:1:2", "tags": {"service": "mobile", "version": "v1"}},
                {"interface": "1.1.1.1:3:4", "tags": {"service": "metrics", "version": "v1"}},
            ]
        }
    },
)


def test_tag_set_string_and_identifying_service():
    assert DP.tags_string() == "service=metrics,mobile version=v1"
    assert DP.service() == "metrics"
    assert DP.matches({"service": "mobile"})
    assert DP.matches({"service": "*", "version": "v1"})
    assert not DP.matches({"service": "mobile", "version": "v2"})


def test_gateway_tags_count_and_unknown_service():
    gw = registry.decode_spec(
        "Dataplane", {"networking": {"gateway": {"tags": {"service": "kong"}}}}
    )
    assert gw.service() == "kong"
    assert gw.matches({"service": "kong"})
    assert registry.decode_spec("Dataplane", {}).service() == "unknown"
