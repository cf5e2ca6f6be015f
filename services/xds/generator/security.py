"""The seam where mTLS (spec §8.11) and TrafficPermission RBAC (§8.12) plug in later.

Generation calls the hook, when one is given, for every inbound listener and every outbound
cluster; without a hook the mesh is plaintext and every inbound is open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2


@dataclass(frozen=True)
class InboundSecurity:
    transport_socket: base_pb2.TransportSocket | None = None
    # Network filters placed before tcp_proxy (the RBAC filter goes first, §8.12).
    filters: tuple[listener_components_pb2.Filter, ...] = field(default=())


class MtlsHook(Protocol):
    def inbound(self, listener_name: str, tags: Mapping[str, str]) -> InboundSecurity:
        """TLS and RBAC for the inbound listener `listener_name` whose interface has `tags`."""
        ...

    def upstream(self, service: str) -> base_pb2.TransportSocket | None:
        """TLS for clusters of `service`. Must depend only on the mesh: the cluster is shared
        by every dataplane of the snapshot."""
        ...
