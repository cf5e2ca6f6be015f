""" "Most specific policy" selection for TrafficRoute, TrafficLog and HealthCheck (spec §8.9)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from kuma.resources.base import Resource
from kuma.resources.selectors import SERVICE_TAG, Rank, matches, rank


class Selectable(Protocol):
    """A dataplane as sources select it: a DataplaneSpec, or the xDS build's shape of one."""

    def matches(self, selector: Mapping[str, str]) -> bool: ...


def _best_source_rank(dataplane: Selectable, policy: Resource) -> Rank | None:
    ranks = [rank(s.match) for s in policy.spec.sources if dataplane.matches(s.match)]
    return max(ranks, key=Rank.sort_key) if ranks else None


def most_specific(
    dataplane: Selectable, services: Iterable[str], policies: Sequence[Resource]
) -> dict[str, Resource]:
    """For each service, the policy whose best source rank plus destination rank is highest.

    Ties keep the alphabetically first policy. Services no policy covers are absent.
    """
    candidates = []
    for policy in sorted(policies, key=lambda p: p.name):
        source_rank = _best_source_rank(dataplane, policy)
        if source_rank is not None:
            candidates.append((policy, source_rank))
    chosen: dict[str, Resource] = {}
    for service in services:
        target = {SERVICE_TAG: service}
        best: tuple[int, int] | None = None
        for policy, source_rank in candidates:
            for dest in policy.spec.destinations:
                if not matches(dest.match, target):
                    continue
                score = (rank(dest.match) + source_rank).sort_key()
                if best is None or score > best:
                    best, chosen[service] = score, policy
    return chosen
