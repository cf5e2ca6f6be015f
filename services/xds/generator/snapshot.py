"""An immutable view of one mesh: everything the generator reads, plus the endpoint index.

The xDS server builds one snapshot per mesh revision and generates every dataplane of the mesh
from it; resources that depend only on the snapshot (a service's Cluster and
ClusterLoadAssignment) are memoised in `shared`, so N dataplanes cost one build each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, TypeVar

from kuma.resources import registry
from kuma.resources.base import Resource
from kuma.resources.dataplane import parse_inbound
from kuma.resources.selectors import SERVICE_TAG, matches

T = TypeVar("T")

# Resource types a snapshot keeps, by field name.
_FIELDS = {
    registry.DATAPLANE: "dataplanes",
    registry.TRAFFIC_ROUTE: "traffic_routes",
    registry.TRAFFIC_LOG: "traffic_logs",
    registry.HEALTH_CHECK: "health_checks",
    registry.PROXY_TEMPLATE: "proxy_templates",
    registry.TRAFFIC_PERMISSION: "traffic_permissions",
}


class Endpoint(NamedTuple):
    """One inbound interface of some dataplane, as seen by the services calling it (§8.2.4)."""

    ip: str
    port: int
    tags: Mapping[str, str]


class SharedCache:
    """Memo of messages that depend only on the snapshot. Cached messages are shared between
    dataplanes: callers must treat them as read-only (copy before changing)."""

    def __init__(self) -> None:
        self._items: dict[tuple[Any, ...], Any] = {}

    def get(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        try:
            return self._items[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._items[key] = build()
            return value

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class MeshSnapshot:
    mesh: Resource
    dataplanes: tuple[Resource, ...] = ()
    traffic_routes: tuple[Resource, ...] = ()
    traffic_logs: tuple[Resource, ...] = ()
    health_checks: tuple[Resource, ...] = ()
    proxy_templates: tuple[Resource, ...] = ()
    traffic_permissions: tuple[Resource, ...] = ()
    # service name -> endpoints of every dataplane's inbounds tagged with that service.
    endpoints: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    # Hash of every input: equal revisions mean equal generated configs.
    revision: str = ""
    shared: SharedCache = field(default_factory=SharedCache, compare=False, repr=False)
    # Messages that depend only on `endpoints` (ClusterLoadAssignments): carried over to the
    # next snapshot while its dataplanes are the same.
    by_endpoints: SharedCache = field(default_factory=SharedCache, compare=False, repr=False)

    @classmethod
    def build(
        cls, mesh: Resource, resources: Iterable[Resource], previous: MeshSnapshot | None = None
    ) -> MeshSnapshot:
        """Keep the resources of `mesh` the generator reads; others (insights, other meshes,
        secrets) are ignored. Each type is ordered by name so output never depends on the
        store's listing order.

        A resource that `previous` holds at the same store revision is taken from `previous`:
        the same object, so what was generated from it is recognised in O(1) (generator.memo)."""
        known = previous._by_revision if previous is not None else {}
        mesh = known.get(_stored_key(mesh), mesh)
        grouped: dict[str, list[Resource]] = {name: [] for name in _FIELDS.values()}
        for res in resources:
            if res.mesh == mesh.name and res.type in _FIELDS:
                grouped[_FIELDS[res.type]].append(known.get(_stored_key(res), res))

        def by_name(field_name: str) -> tuple[Resource, ...]:
            return tuple(sorted(grouped[field_name], key=lambda r: r.name))

        kept = {name: by_name(name) for name in _FIELDS.values()}
        dataplanes = kept["dataplanes"]
        if previous is not None and _same_objects(previous.dataplanes, dataplanes):
            endpoints, by_endpoints = previous.endpoints, previous.by_endpoints
        else:
            endpoints, by_endpoints = index_endpoints(dataplanes), SharedCache()
        return cls(
            mesh=mesh,
            dataplanes=kept["dataplanes"],
            traffic_routes=kept["traffic_routes"],
            traffic_logs=kept["traffic_logs"],
            health_checks=kept["health_checks"],
            proxy_templates=kept["proxy_templates"],
            traffic_permissions=kept["traffic_permissions"],
            endpoints=endpoints,
            revision=_revision(mesh, [r for group in kept.values() for r in group]),
            by_endpoints=by_endpoints,
        )

    def dataplane(self, name: str) -> Resource | None:
        return self._by_name.get(name)

    @cached_property
    def _by_revision(self) -> dict[tuple[str, str, int], Resource]:
        resources = (self.mesh, *(r for name in _FIELDS.values() for r in getattr(self, name)))
        return {_stored_key(r): r for r in resources if r.revision}

    @cached_property
    def _by_name(self) -> dict[str, Resource]:
        # Looked up once per connected dataplane per rebuild: a scan would make a rebuild
        # quadratic in the mesh size.
        return {d.name: d for d in self.dataplanes}

    def endpoints_matching(self, selector: Mapping[str, str]) -> list[Endpoint]:
        """Endpoints of the selector's service whose tags match every selector tag."""
        service = selector.get(SERVICE_TAG, "")
        return [e for e in self.endpoints.get(service, ()) if matches(selector, e.tags)]


def index_endpoints(dataplanes: Iterable[Resource]) -> dict[str, tuple[Endpoint, ...]]:
    index: dict[str, list[Endpoint]] = {}
    for dp in dataplanes:
        inbounds = dp.spec.networking.inbound
        parsed = [parse_inbound(i.interface) for i in inbounds]
        # One bad interface makes the whole dataplane unreachable, as in Kuma (§8.2.4).
        if any(p is None for p in parsed):
            continue
        for inbound, iface in zip(inbounds, parsed, strict=True):
            assert iface is not None
            service = inbound.tags.get(SERVICE_TAG)
            if service is not None:
                endpoint = Endpoint(iface.dataplane_ip, iface.dataplane_port, dict(inbound.tags))
                index.setdefault(service, []).append(endpoint)
    return {service: tuple(eps) for service, eps in index.items()}


def _same_objects(a: tuple[Resource, ...], b: tuple[Resource, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _stored_key(res: Resource) -> tuple[str, str, int]:
    return (res.type, res.name, res.revision)


def _revision(mesh: Resource, resources: Iterable[Resource]) -> str:
    """A stored resource is named by its store revision (one per write, never reused); one not
    stored (revision 0) by its content."""
    digest = hashlib.sha256()
    for res in (mesh, *resources):
        content = res.revision or registry.encode_spec(res.spec)
        record = [res.type, res.mesh, res.name, content]
        digest.update(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()
