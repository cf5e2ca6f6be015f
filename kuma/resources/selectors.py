"""Tag selectors (spec §3.3, §3.14.1): the model, matching with `*`, rank, and the two rule sets
that validate selector lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from kuma.errors import Violation
from kuma.resources import paths
from kuma.resources.base import Spec, Tags

SERVICE_TAG = "service"
WILDCARD = "*"


class Selector(Spec):
    match: Tags = {}


def matches(selector: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """Every selector key must be among the tags, with an equal value or `*`; {} matches all."""
    for k, v in selector.items():
        actual = tags.get(k)
        if actual is None or (v != WILDCARD and v != actual):
            return False
    return True


class Rank(NamedTuple):
    """How specific a selector is: counts of exact and wildcard values. Ranks add up."""

    exact: int = 0
    wildcard: int = 0

    def __add__(self, other: object) -> Rank:  # type: ignore[override]
        assert isinstance(other, Rank)
        return Rank(self.exact + other.exact, self.wildcard + other.wildcard)

    def sort_key(self) -> tuple[int, int]:
        # Larger total wins; on a tie, more exact values win.
        return (self.exact + self.wildcard, self.exact)


def rank(selector: Mapping[str, str]) -> Rank:
    wild = sum(1 for v in selector.values() if v == WILDCARD)
    return Rank(len(selector) - wild, wild)


# --- validation rules -----------------------------------------------------------------------


def validate_general(selector: Mapping[str, str], path: str) -> list[Violation]:
    """Rule for sources, ProxyTemplate selectors and TrafficRoute destinations (§3.14.1)."""
    out: list[Violation] = []
    if not selector:
        out.append(Violation(path, "must have at least one tag"))
    for k in sorted(selector):
        if not k:
            out.append(Violation(path, "tag key must be non-empty"))
        if not selector[k]:
            out.append(Violation(paths.key(path, k), "tag value must be non-empty"))
    if SERVICE_TAG not in selector:
        out.append(Violation(path, f'mandatory tag "{SERVICE_TAG}" is missing'))
    return out


def validate_only_service(selector: Mapping[str, str], path: str) -> list[Violation]:
    """Rule for TrafficPermission and every policy's destinations (§3.14.1)."""
    out: list[Violation] = []
    if len(selector) != 1 or SERVICE_TAG not in selector:
        out.append(Violation(path, f'must consist of exactly one tag "{SERVICE_TAG}"'))
    for k in sorted(selector):
        if not k:
            out.append(Violation(path, "tag key must be non-empty"))
        elif k != SERVICE_TAG:
            out.append(Violation(paths.key(path, k), f'tag "{k}" is not allowed'))
        if not selector[k]:
            out.append(Violation(paths.key(path, k), "tag value must be non-empty"))
    if SERVICE_TAG not in selector:
        out.append(Violation(path, f'mandatory tag "{SERVICE_TAG}" is missing'))
    return out


def validate_selectors(
    selectors: Sequence[Selector],
    list_name: str,
    rule: str,
    required: bool = True,
) -> list[Violation]:
    """Validate a `sources`/`destinations`/`selectors` list; rule is `general` or `service`."""
    if required and not selectors:
        return [Violation(list_name, "must have at least one element")]
    check = validate_general if rule == "general" else validate_only_service
    out: list[Violation] = []
    for i, selector in enumerate(selectors):
        out.extend(check(selector.match, paths.field(paths.index(list_name, i), "match")))
    return out
