"""An immutable view of one mesh: everything the generator reads, plus the endpoint index.

The xDS server builds one snapshot per mesh revision and generates every dataplane of the mesh
from it. Its collections hash by content (ResourceSet, EndpointSet) so that generation can key
what it builds by them (generator.parts); a service whose endpoints did not change keeps its
EndpointSet object from one snapshot to the next.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, TypeVar

from kuma.resources import registry
from kuma.resources.base import Resource
from kuma.resources.dataplane import parse_inbound
from kuma.resources.selectors import SERVICE_TAG, matches
from kuma.store.base import StoredKey, stored_key

# Resource types a snapshot keeps, by field name.
T = TypeVar("T")
_FIELDS = {  # every type a proxy's config is made from, but Mesh: TrafficRoute -> traffic_routes
    t.name: re.sub(r"(?<!^)(?=[A-Z])", "_", t.name).lower() + "s"
    for t in registry.TYPES
    if t.configures_proxies and not t.is_mesh
}


class Endpoint(NamedTuple):
    """One inbound interface of some dataplane, as seen by the services calling it (§8.2.4)."""

    ip: str
    port: int
    tags: Mapping[str, str]


class _HashedOnce(tuple[T, ...]):
    """A tuple whose hash is computed once: looked up for every dataplane on every pass."""

    _hash: int

    def _content(self) -> Any:
        return tuple(self)

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            self._hash = hash(self._content())
            return self._hash


class ResourceSet(_HashedOnce[Resource]):
    """Resources of one type, in name order (a resource hashes by its version)."""


class EndpointSet(_HashedOnce[Endpoint]):
    """A service's endpoints, hashed by content (tags are dicts: hashed as sorted items)."""

    def _content(self) -> Any:
        return tuple((e.ip, e.port, tuple(sorted(e.tags.items()))) for e in self)


EMPTY_SET = ResourceSet()
NO_ENDPOINTS = EndpointSet()


@dataclass(frozen=True)
class MeshSnapshot:
    mesh: Resource
    dataplanes: ResourceSet = EMPTY_SET
    traffic_routes: ResourceSet = EMPTY_SET
    traffic_logs: ResourceSet = EMPTY_SET
    health_checks: ResourceSet = EMPTY_SET
    proxy_templates: ResourceSet = EMPTY_SET
    traffic_permissions: ResourceSet = EMPTY_SET
    # service name -> endpoints of every dataplane's inbounds tagged with that service.
    endpoints: Mapping[str, EndpointSet] = field(default_factory=dict)
    # Hash of every input: equal revisions mean equal generated configs.
    revision: str = ""

    @classmethod
    def build(
        cls, mesh: Resource, resources: Iterable[Resource], previous: MeshSnapshot | None = None
    ) -> MeshSnapshot:
        """Keep the resources of `mesh` the generator reads; others (insights, other meshes,
        secrets) are ignored. Each type is ordered by name so output never depends on the
        store's listing order.

        From `previous`, a resource held at the same store revision is taken as the same
        object, and a service's endpoints as the same EndpointSet when they are equal: what was
        built from them is then found by an identity check (generator.parts)."""
        known = previous.known if previous is not None else {}
        mesh = known.get(stored_key(mesh), mesh)
        grouped: dict[str, list[Resource]] = {name: [] for name in _FIELDS.values()}
        for res in resources:
            if res.mesh == mesh.name and res.type in _FIELDS:
                grouped[_FIELDS[res.type]].append(known.get(stored_key(res), res))
        kept = {
            name: ResourceSet(sorted(group, key=lambda r: r.name))
            for name, group in grouped.items()
        }
        dataplanes = kept["dataplanes"]
        if previous is not None and _same_objects(previous.dataplanes, dataplanes):
            endpoints = previous.endpoints
        else:
            endpoints = index_endpoints(dataplanes, previous.endpoints if previous else {})
        return cls(
            mesh=mesh,
            dataplanes=dataplanes,
            traffic_routes=kept["traffic_routes"],
            traffic_logs=kept["traffic_logs"],
            health_checks=kept["health_checks"],
            proxy_templates=kept["proxy_templates"],
            traffic_permissions=kept["traffic_permissions"],
            endpoints=endpoints,
            revision=_revision(mesh, [r for group in kept.values() for r in group]),
        )

    def dataplane(self, name: str) -> Resource | None:
        return self._by_name.get(name)

    @cached_property
    def known(self) -> dict[StoredKey, Resource]:
        """Its stored resources by write: the next reading of the mesh takes what it holds
        from here (equal objects, and the store decodes none of them again)."""
        resources = (self.mesh, *(r for name in _FIELDS.values() for r in getattr(self, name)))
        return {stored_key(r): r for r in resources if r.revision}

    @cached_property
    def _by_name(self) -> dict[str, Resource]:
        # Looked up once per connected dataplane per rebuild: a scan would make a rebuild
        # quadratic in the mesh size.
        return {d.name: d for d in self.dataplanes}

    def endpoints_of(self, service: str) -> EndpointSet:
        return self.endpoints.get(service, NO_ENDPOINTS)


def endpoints_matching(
    endpoints: Iterable[Endpoint], selector: Mapping[str, str]
) -> list[Endpoint]:
    """The endpoints whose tags match every tag of `selector`."""
    return [e for e in endpoints if matches(selector, e.tags)]


def index_endpoints(
    dataplanes: Iterable[Resource], previous: Mapping[str, EndpointSet] | None = None
) -> dict[str, EndpointSet]:
    """Endpoints by service; a service whose endpoints equal `previous`'s keeps that object."""
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
    out: dict[str, EndpointSet] = {}
    for service, eps in index.items():
        new = EndpointSet(eps)
        old = previous.get(service) if previous else None
        out[service] = old if old is not None and old == new else new
    return out


def _same_objects(a: tuple[Resource, ...], b: tuple[Resource, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _revision(mesh: Resource, resources: Iterable[Resource]) -> str:
    """A stored resource is named by its store revision (one per write, never reused); one not
    stored (revision 0) by its content. Computed for every resource of the mesh on every
    change, so a stored one is a plain line (names hold no NUL), not a JSON document."""
    digest = hashlib.sha256()
    for res in (mesh, *resources):
        if res.revision:
            digest.update(f"{res.type}\0{res.mesh}\0{res.name}\0{res.revision}\n".encode())
        else:
            record = [res.type, res.mesh, res.name, registry.encode_spec(res.spec)]
            digest.update(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
            digest.update(b"\n")
    return digest.hexdigest()
