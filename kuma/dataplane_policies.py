"""The policies that select one dataplane, and where each applies (Kuma 1.x's "policies for a
dataplane"): the ProxyTemplate (spec §8.3), the TrafficPermissions of each inbound (§8.12), the
TrafficRoute and TrafficLog of each outbound and the HealthCheck of each destination service
(most specific, §8.9), chosen as generation chooses them. Pure: the API serves it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kuma.policy_match import most_specific
from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.registry import (
    HEALTH_CHECK,
    PROXY_TEMPLATE,
    TRAFFIC_LOG,
    TRAFFIC_PERMISSION,
    TRAFFIC_ROUTE,
)
from kuma.resources.selectors import SERVICE_TAG, matches


def template_for(dataplane: DataplaneSpec, templates: Sequence[Resource]) -> Resource | None:
    """The ProxyTemplate that configures `dataplane` (spec §8.3), None for the built-in default.

    The best score wins: the size of a selector equal (no `*`, §16.10) to an inbound's tags. An
    unconditional template scores 0 and wins only if nothing else matches; ties keep the first
    template by name."""
    best: Resource | None = None
    best_score = 0
    tag_sets = [i.tags for i in dataplane.networking.inbound]
    for template in sorted(templates, key=lambda t: t.name):
        selectors = [s.match for s in template.spec.selectors]
        if (not selectors or any(not s for s in selectors)) and best is None:
            best = template
        for selector in selectors:
            for tags in tag_sets:
                exact = selector and all(tags.get(k) == v for k, v in selector.items())
                if exact and len(selector) > best_score:
                    best, best_score = template, len(selector)
    return best


def permissions_for(tags: Mapping[str, str], permissions: Iterable[Resource]) -> list[Resource]:
    """The TrafficPermissions whose destinations select an inbound with `tags` (spec §8.12)."""
    return [
        p
        for p in sorted(permissions, key=lambda p: p.name)
        if any(matches(d.match, tags) for d in p.spec.destinations)
    ]


@dataclass(frozen=True)
class MeshPolicies:
    """A mesh's policies of each kind that can select a dataplane."""

    traffic_permissions: Sequence[Resource] = ()
    traffic_routes: Sequence[Resource] = ()
    traffic_logs: Sequence[Resource] = ()
    health_checks: Sequence[Resource] = ()
    proxy_templates: Sequence[Resource] = ()


@dataclass(frozen=True)
class Attachment:
    """Where policies attach to a dataplane (Kuma 1.x's inspect API): the dataplane as a whole,
    an inbound or outbound interface, or a destination service; with the policies, by type."""

    kind: str  # dataplane | inbound | outbound | service
    name: str  # the interface, the service, or "" for the dataplane
    service: str
    policies: dict[str, list[Resource]] = field(default_factory=dict)


def attachments(dataplane: DataplaneSpec, policies: MeshPolicies) -> list[Attachment]:
    """Every policy that selects `dataplane`, where it applies: the template (dataplane), the
    permissions (each inbound), the route and log (each outbound) and the health check (each
    service a route sends to), as generation chooses them."""
    out: list[Attachment] = []
    template = template_for(dataplane, policies.proxy_templates)
    if template is not None:
        out.append(Attachment("dataplane", "", "", {PROXY_TEMPLATE: [template]}))
    for inbound in dataplane.networking.inbound:
        allowed = permissions_for(inbound.tags, policies.traffic_permissions)
        service = inbound.tags.get(SERVICE_TAG, "")
        out.append(Attachment("inbound", inbound.interface, service, {TRAFFIC_PERMISSION: allowed}))
    services = list(dict.fromkeys(o.service for o in dataplane.networking.outbound))
    routes = most_specific(dataplane, services, policies.traffic_routes)
    logs = most_specific(dataplane, services, policies.traffic_logs)
    destinations: dict[str, None] = {}
    for outbound in dataplane.networking.outbound:
        chosen: dict[str, list[Resource]] = {}
        for kind, found in ((TRAFFIC_ROUTE, routes), (TRAFFIC_LOG, logs)):
            if outbound.service in found:
                chosen[kind] = [found[outbound.service]]
        out.append(Attachment("outbound", outbound.interface, outbound.service, chosen))
    for service in services:
        route = routes.get(service)
        splits = route.spec.conf if route is not None else ()
        targets = [s.destination.get(SERVICE_TAG) for s in splits] if splits else [service]
        destinations.update(dict.fromkeys(t for t in targets if t))
    checks = most_specific(dataplane, destinations, policies.health_checks)
    for service in destinations:
        if service in checks:
            out.append(Attachment("service", service, service, {HEALTH_CHECK: [checks[service]]}))
    return out
