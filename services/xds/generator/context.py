"""The per-dataplane inputs of one generation (spec §8.2): the chosen route, log backend and
health check of each service, computed once and read by every generator module."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, TypeVar

from kuma.policy_match import most_specific
from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.mesh import LoggingBackend, MeshSpec
from kuma.resources.policies import WeightedDestination
from kuma.resources.selectors import SERVICE_TAG, matches
from services.xds.generator.parts import Parts
from services.xds.generator.security import MtlsHook
from services.xds.generator.snapshot import EndpointSet, MeshSnapshot, ResourceSet

V = TypeVar("V")


@dataclass(frozen=True)
class ProxyMetadata:
    """What Envoy's node metadata tells about the dataplane (spec §8.1)."""

    admin_port: int = 0
    # gRPC's own xDS client rather than Envoy: it is configured through api_listeners.
    proxyless: bool = False


@dataclass(frozen=True, eq=False)
class Route:
    """A TrafficRoute's splits; `name` is "" for the implicit route to the service itself."""

    name: str
    splits: tuple[WeightedDestination, ...]
    _content: tuple[Any, ...] = field(init=False, repr=False)

    @classmethod
    def implicit(cls, service: str) -> Route:
        return cls("", (WeightedDestination(weight=100, destination={SERVICE_TAG: service}),))

    def __post_init__(self) -> None:
        # Compared whenever nodes of different shapes look up a part keyed by their routes:
        # plain tuples, not the splits' models, which compare field by field.
        content = (
            self.name,
            tuple((s.weight, tuple(sorted(s.destination.items()))) for s in self.splits),
        )
        object.__setattr__(self, "_content", content)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Route) and self._content == other._content

    def __hash__(self) -> int:
        return hash(self._content)


class Choice(Mapping[str, V]):
    """What was chosen per service: an immutable mapping that hashes by content, so that what
    is built from a choice can be keyed by it (generator.parts)."""

    __slots__ = ("_by_service", "_items", "_hash")

    def __init__(self, by_service: Mapping[str, V]) -> None:
        self._by_service = dict(by_service)
        self._items = tuple(self._by_service.items())
        self._hash = hash(self._items)

    def __getitem__(self, service: str) -> V:
        return self._by_service[service]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_service)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Choice) and self._hash == other._hash and self._items == other._items
        )


@dataclass(frozen=True)
class Shape:
    """What policy selection reads of a dataplane: the tag sets of its inbounds and the
    services it calls. Dataplanes of one shape share their choices of policies."""

    tag_sets: tuple[tuple[tuple[str, str], ...], ...]
    services: tuple[str, ...]

    @classmethod
    def of(cls, dataplane: Resource) -> Shape:
        spec: DataplaneSpec = dataplane.spec
        return cls(
            tuple(tuple(sorted(tags.items())) for tags in spec.tag_sets()),
            tuple(dict.fromkeys(o.service for o in spec.networking.outbound)),
        )

    @cached_property
    def _tags(self) -> list[dict[str, str]]:
        return [dict(items) for items in self.tag_sets]

    @cached_property
    def _hash(self) -> int:
        return hash((self.tag_sets, self.services))

    def __hash__(self) -> int:  # looked up for every dataplane on every pass
        return self._hash

    def matches(self, selector: Mapping[str, str]) -> bool:
        return any(matches(selector, tags) for tags in self._tags)


def select_routes(shape: Shape, policies: ResourceSet) -> Choice[Route]:
    chosen = most_specific(shape, shape.services, policies)
    return Choice(
        {
            s: Route(chosen[s].name, tuple(chosen[s].spec.conf))
            if s in chosen
            else Route.implicit(s)
            for s in shape.services
        }
    )


def select_logs(shape: Shape, policies: ResourceSet, mesh: Resource) -> Choice[LoggingBackend]:
    spec: MeshSpec = mesh.spec
    logs = {}
    for service, policy in most_specific(shape, shape.services, policies).items():
        backend = spec.backend(policy.spec.conf.backend if policy.spec.conf else "")
        if backend is not None:  # an unknown backend means no logging (§8.2.7)
            logs[service] = backend
    return Choice(logs)


def destinations(routes: Choice[Route]) -> tuple[str, ...]:
    """The services the routes send traffic to."""
    return tuple(
        dict.fromkeys(
            split.destination[SERVICE_TAG]
            for route in routes.values()
            for split in route.splits
            if SERVICE_TAG in split.destination
        )
    )


def select_health_checks(
    shape: Shape, routes: Choice[Route], policies: ResourceSet
) -> Choice[Resource]:
    return Choice(most_specific(shape, destinations(routes), policies))


@dataclass(frozen=True, eq=False)
class Choices:
    """What a dataplane's shape and the mesh's policies decide for it: the chosen route, log
    backend and health check of each service, and the endpoints its routes reach. Built once
    per shape and snapshot, and interned (`choose`), so that dataplanes whose choices did not
    change hold the same object from one snapshot to the next."""

    routes: Choice[Route]
    logs: Choice[LoggingBackend]
    health_checks: Choice[Resource]
    # The endpoints of the services its routes reach, by service.
    endpoints: tuple[tuple[str, EndpointSet], ...]
    _content: tuple[Any, ...] = field(init=False, repr=False)
    _hash: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        content = (self.routes, self.logs, self.health_checks, self.endpoints)
        object.__setattr__(self, "_content", content)
        object.__setattr__(self, "_hash", hash(content))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Choices)
            and self._hash == other._hash
            and self._content == other._content
        )

    def __hash__(self) -> int:
        return self._hash


def choose(shape: Shape, snapshot: MeshSnapshot, parts: Parts) -> Choices:
    routes = parts.build(select_routes, shape, snapshot.traffic_routes)
    return parts.build(
        Choices,
        routes,
        parts.build(select_logs, shape, snapshot.traffic_logs, snapshot.mesh),
        parts.build(select_health_checks, shape, routes, snapshot.health_checks),
        tuple((s, snapshot.endpoints_of(s)) for s in parts.build(destinations, routes)),
    )


class Proxy(NamedTuple):
    """One dataplane's inputs, its policies chosen. Everything built from it goes through
    `parts`, the mesh's build cache, keyed by what it reads. (A tuple: one is made for every
    dataplane a change reaches, and a frozen dataclass costs several times as much to make.)"""

    snapshot: MeshSnapshot
    dataplane: Resource
    parts: Parts
    metadata: ProxyMetadata
    choices: Choices
    mtls: MtlsHook | None = None

    @property
    def spec(self) -> DataplaneSpec:
        return self.dataplane.spec  # type: ignore[no-any-return]

    @property
    def mesh(self) -> MeshSpec:
        return self.snapshot.mesh.spec  # type: ignore[no-any-return]

    @property
    def routes(self) -> Choice[Route]:
        return self.choices.routes

    @property
    def logs(self) -> Choice[LoggingBackend]:
        return self.choices.logs

    @property
    def health_checks(self) -> Choice[Resource]:
        return self.choices.health_checks

    @property
    def endpoints(self) -> tuple[tuple[str, EndpointSet], ...]:
        return self.choices.endpoints

    @property
    def transparent_port(self) -> int:
        return transparent_port(self.spec)

    @property
    def virtual(self) -> bool:
        """With transparent proxying, listeners get connections via `catch_all` (§8.10)."""
        return self.transparent_port != 0

    def inputs(self) -> tuple[Any, ...]:
        """Everything this dataplane's config is made from, hashable: equal inputs, equal
        config. Its elements are the same objects while unchanged (stored resources are kept
        by revision, choices interned), so comparing two is mostly identity checks."""
        snapshot = self.snapshot
        return (
            self.dataplane,
            self.metadata,
            self.mtls,
            snapshot.mesh,
            snapshot.proxy_templates,
            self.choices,
        )


def transparent_port(spec: DataplaneSpec) -> int:
    tp = spec.networking.transparent_proxying
    return tp.redirect_port if tp is not None else 0


def build_proxy(
    snapshot: MeshSnapshot,
    dataplane: Resource,
    metadata: ProxyMetadata,
    mtls: MtlsHook | None,
    parts: Parts,
) -> Proxy:
    choices = choose(parts.build(Shape.of, dataplane), snapshot, parts)
    return Proxy(snapshot, dataplane, parts, metadata, choices, mtls)
