"""ProxyConfig: the generated resources of one dataplane, keyed by Envoy name within each type."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf.message import Message

from services.xds.ads.types import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

# message type -> (ProxyConfig field, type URL)
_KINDS: dict[type[Message], tuple[str, str]] = {
    listener_pb2.Listener: ("listeners", LISTENER),
    cluster_pb2.Cluster: ("clusters", CLUSTER),
    endpoint_pb2.ClusterLoadAssignment: ("endpoints", ENDPOINT),
    route_pb2.RouteConfiguration: ("routes", ROUTE),
    secret_pb2.Secret: ("secrets", SECRET),
}
TYPE_URLS = tuple(url for _, url in _KINDS.values())


def resource_name(resource: Message) -> str:
    """The name xDS keys a resource by: `cluster_name` for a ClusterLoadAssignment."""
    if isinstance(resource, endpoint_pb2.ClusterLoadAssignment):
        return resource.cluster_name
    return resource.name  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True)
class ProxyConfig:
    """Messages may be shared with other dataplanes of the same snapshot: treat as read-only."""

    listeners: dict[str, listener_pb2.Listener] = field(default_factory=dict)
    clusters: dict[str, cluster_pb2.Cluster] = field(default_factory=dict)
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = field(default_factory=dict)
    routes: dict[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    secrets: dict[str, secret_pb2.Secret] = field(default_factory=dict)

    @classmethod
    def of(cls, resources: Iterable[Message]) -> ProxyConfig:
        """Collect resources in order; a later resource replaces an earlier one of the same type
        and name, which is how ProxyTemplate raw resources override generated ones (§8.3)."""
        config = cls()
        for resource in resources:
            try:
                kind, _ = _KINDS[type(resource)]
            except KeyError:
                raise TypeError(f"not an xDS resource: {type(resource).__name__}") from None
            getattr(config, kind)[resource_name(resource)] = resource
        return config

    @classmethod
    def merge(cls, *configs: ProxyConfig) -> ProxyConfig:
        """`configs` in order, as `of` collects resources: a later one's resource replaces an
        earlier one's of the same type and name. A type that one config alone has keeps that
        config's dict, so merging shared parts copies nothing."""
        merged = {}
        for kind, _ in _KINDS.values():
            found = [d for c in configs if (d := getattr(c, kind))]
            merged[kind] = (
                found[0] if len(found) == 1 else {k: m for d in found for k, m in d.items()}
            )
        return cls(**merged)

    @cached_property
    def present(self) -> tuple[tuple[str, dict[str, Message]], ...]:
        """(type URL, resources) of the types it has: a config that is one of the mesh's parts
        is read for every node made of it."""
        return tuple((url, d) for kind, url in _KINDS.values() if (d := getattr(self, kind)))

    def by_type_url(self) -> dict[str, dict[str, Message]]:
        """The resources by type URL (the dicts themselves: read-only)."""
        return {url: getattr(self, kind) for kind, url in _KINDS.values()}

    def __iter__(self) -> Iterator[Message]:
        for kind, _ in _KINDS.values():
            yield from getattr(self, kind).values()
