"""Policies between services (spec §3.6-§3.9): TrafficPermission, TrafficLog, TrafficRoute,
HealthCheck. Each has `sources` and `destinations` selector lists; most have a `conf`."""

from __future__ import annotations

from datetime import timedelta

from kuma.errors import Violation
from kuma.resources import paths
from kuma.resources.base import Duration, Spec, Tags, UInt32
from kuma.resources.selectors import (
    Selector,
    validate_general,
    validate_selectors,
)


class Policy(Spec):
    sources: list[Selector] = []
    destinations: list[Selector] = []


def _validate_endpoints(spec: Policy, sources_rule: str) -> list[Violation]:
    return validate_selectors(spec.sources, "sources", sources_rule) + validate_selectors(
        spec.destinations, "destinations", "service"
    )


# --- TrafficPermission ----------------------------------------------------------------------


class TrafficPermissionSpec(Policy):
    pass


def validate_traffic_permission(spec: TrafficPermissionSpec) -> list[Violation]:
    return _validate_endpoints(spec, "service")


# --- TrafficLog -----------------------------------------------------------------------------


class TrafficLogConf(Spec):
    backend: str = ""


class TrafficLogSpec(Policy):
    conf: TrafficLogConf | None = None


def validate_traffic_log(spec: TrafficLogSpec) -> list[Violation]:
    return _validate_endpoints(spec, "general")


# --- TrafficRoute ---------------------------------------------------------------------------


class WeightedDestination(Spec):
    weight: UInt32 = 0
    destination: Tags = {}


class TrafficRouteSpec(Policy):
    conf: list[WeightedDestination] = []


def validate_traffic_route(spec: TrafficRouteSpec) -> list[Violation]:
    out = _validate_endpoints(spec, "general")
    if not spec.conf:
        out.append(Violation("conf", "must have at least one element"))
    for i, split in enumerate(spec.conf):
        out.extend(
            validate_general(split.destination, paths.field(paths.index("conf", i), "destination"))
        )
    return out


# --- HealthCheck ----------------------------------------------------------------------------


class ActiveChecks(Spec):
    interval: Duration | None = None
    timeout: Duration | None = None
    unhealthy_threshold: UInt32 = 0
    healthy_threshold: UInt32 = 0


class PassiveChecks(Spec):
    unhealthy_threshold: UInt32 = 0
    penalty_interval: Duration | None = None


class HealthCheckConf(Spec):
    active_checks: ActiveChecks | None = None
    passive_checks: PassiveChecks | None = None


class HealthCheckSpec(Policy):
    conf: HealthCheckConf | None = None


def _positive(value: timedelta | int | None) -> bool:
    if isinstance(value, timedelta):
        return value > timedelta(0)
    return bool(value)


def _check_positive(block: Spec, root: str, names: tuple[str, ...]) -> list[Violation]:
    fields = type(block).model_fields
    return [
        Violation(paths.field(root, fields[n].alias or n), "must have a positive value")
        for n in names
        if not _positive(getattr(block, n))
    ]


def validate_health_check(spec: HealthCheckSpec) -> list[Violation]:
    out = _validate_endpoints(spec, "general")
    conf = spec.conf or HealthCheckConf()
    # An empty block (`activeChecks: {}`) counts as absent, as in Kuma (reflect.DeepEqual with
    # the empty message): its fields are not checked.
    active = None if conf.active_checks == ActiveChecks() else conf.active_checks
    passive = None if conf.passive_checks == PassiveChecks() else conf.passive_checks
    if active is None and passive is None:
        out.append(Violation("conf", "must have either active or passive checks configured"))
    if active is not None:
        out.extend(
            _check_positive(
                active,
                "conf.activeChecks",
                ("interval", "timeout", "unhealthy_threshold", "healthy_threshold"),
            )
        )
    if passive is not None:
        out.extend(
            _check_positive(
                passive, "conf.passiveChecks", ("unhealthy_threshold", "penalty_interval")
            )
        )
    return out
