"""The per-dataplane inputs of one generation (spec §8.2): the chosen route, log backend and
health check of each service, computed once and read by every generator module."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from kuma.policy_match import most_specific
from kuma.resources.base import Resource
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.mesh import LoggingBackend, MeshSpec
from kuma.resources.policies import WeightedDestination
from kuma.resources.selectors import SERVICE_TAG
from services.xds.generator.memo import PartMemo
from services.xds.generator.security import MtlsHook
from services.xds.generator.snapshot import MeshSnapshot

T = TypeVar("T")


@dataclass(frozen=True)
class ProxyMetadata:
    """What Envoy's node metadata tells about the dataplane (spec §8.1)."""

    admin_port: int = 0
    # gRPC's own xDS client rather than Envoy: it is configured through api_listeners.
    proxyless: bool = False


@dataclass(frozen=True)
class Route:
    """A TrafficRoute's splits; `name` is "" for the implicit route to the service itself."""

    name: str
    splits: tuple[WeightedDestination, ...]

    @classmethod
    @functools.lru_cache(maxsize=4096)  # asked for each outbound of each dataplane
    def implicit(cls, service: str) -> Route:
        return cls("", (WeightedDestination(weight=100, destination={SERVICE_TAG: service}),))


@dataclass(frozen=True)
class Proxy:
    snapshot: MeshSnapshot
    dataplane: Resource
    metadata: ProxyMetadata = ProxyMetadata()
    routes: Mapping[str, Route] = field(default_factory=dict)  # by outbound service
    logs: Mapping[str, LoggingBackend] = field(default_factory=dict)  # by outbound service
    health_checks: Mapping[str, Resource] = field(default_factory=dict)  # by destination service
    mtls: MtlsHook | None = None
    # The dataplane's parts from its last generation (None: build everything).
    memo: PartMemo | None = None

    @property
    def spec(self) -> DataplaneSpec:
        return self.dataplane.spec  # type: ignore[no-any-return]

    @property
    def mesh(self) -> MeshSpec:
        return self.snapshot.mesh.spec  # type: ignore[no-any-return]

    @property
    def transparent_port(self) -> int:
        tp = self.spec.networking.transparent_proxying
        return tp.redirect_port if tp is not None else 0

    @property
    def virtual(self) -> bool:
        """With transparent proxying, listeners get connections via `catch_all` (§8.10)."""
        return self.transparent_port != 0

    @property
    def mtls_key(self) -> Any:
        return self.mtls.key if self.mtls is not None else None

    def part(self, name: str, key: Any, build: Callable[[], list[Message]]) -> list[Message]:
        """`build()`, or what it returned last time if `key` (everything it reads) is unchanged."""
        return build() if self.memo is None else self.memo.part(name, key, build)


def build_proxy(
    snapshot: MeshSnapshot,
    dataplane: Resource,
    metadata: ProxyMetadata,
    mtls: MtlsHook | None = None,
    memo: PartMemo | None = None,
) -> Proxy:
    spec: DataplaneSpec = dataplane.spec

    def chosen(name: str, key: Any, select: Callable[[], T]) -> T:
        return select() if memo is None else memo.part(name, key, select)

    routes = chosen(
        "routes",
        (spec, snapshot.traffic_routes),
        lambda: _routes(spec, snapshot.traffic_routes),
    )
    logs = chosen(
        "logs",
        (spec, snapshot.traffic_logs, snapshot.mesh.spec.logging),
        lambda: _logs(spec, snapshot),
    )
    health_checks = chosen(
        "health_checks",
        (spec, routes, snapshot.health_checks),
        lambda: _health_checks(spec, routes, snapshot.health_checks),
    )
    return Proxy(
        snapshot=snapshot,
        dataplane=dataplane,
        metadata=metadata,
        routes=routes,
        logs=logs,
        health_checks=health_checks,
        mtls=mtls,
        memo=memo,
    )


def _outbound_services(spec: DataplaneSpec) -> list[str]:
    return list(dict.fromkeys(o.service for o in spec.networking.outbound))


def _routes(spec: DataplaneSpec, policies: Sequence[Resource]) -> dict[str, Route]:
    services = _outbound_services(spec)
    chosen = most_specific(spec, services, policies)
    return {
        s: Route(chosen[s].name, tuple(chosen[s].spec.conf)) if s in chosen else Route.implicit(s)
        for s in services
    }


def _logs(spec: DataplaneSpec, snapshot: MeshSnapshot) -> dict[str, LoggingBackend]:
    mesh: MeshSpec = snapshot.mesh.spec
    logs = {}
    for service, policy in most_specific(
        spec, _outbound_services(spec), snapshot.traffic_logs
    ).items():
        backend = mesh.backend(policy.spec.conf.backend if policy.spec.conf else "")
        if backend is not None:  # an unknown backend means no logging (§8.2.7)
            logs[service] = backend
    return logs


def _health_checks(
    spec: DataplaneSpec, routes: Mapping[str, Route], policies: Sequence[Resource]
) -> dict[str, Resource]:
    destinations = dict.fromkeys(
        split.destination[SERVICE_TAG]
        for route in routes.values()
        for split in route.splits
        if SERVICE_TAG in split.destination
    )
    return most_specific(spec, destinations, policies)
