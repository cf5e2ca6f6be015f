"""The mTLS/RBAC seam: a hook's filters and sockets land where Envoy expects them, and the
mesh's parts keep clusters with different TLS apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2

from services.xds.generator import InboundSecurity, generate
from services.xds.generator.parts import Parts
from tests.unit.xds.helpers import snapshot

RBAC = "envoy.filters.network.rbac"
TLS = "envoy.transport_sockets.tls"


class DenyAllHook:
    mesh = "default"

    def inbound(self, tags: Mapping[str, str]) -> InboundSecurity:
        return InboundSecurity(rbac=rbac_pb2.RBAC())  # no policies: every connection is denied


DOCS: list[dict[str, Any]] = [
    {"type": "Mesh", "name": "default"},
    {
        "type": "Dataplane",
        "mesh": "default",
        "name": "backend-1",
        "networking": {
            "inbound": [{"interface": "10.0.0.1:80:8080", "tags": {"service": "backend"}}],
            "outbound": [{"interface": ":10000", "service": "redis"}],
        },
    },
]


def test_hook_adds_rbac_first_and_upstream_tls() -> None:
    snap = snapshot(DOCS)
    parts = Parts()
    config = generate(snap, "backend-1", mtls=DenyAllHook(), parts=parts)
    filters = config.listeners["inbound:10.0.0.1:80"].filter_chains[0].filters
    assert [f.name for f in filters] == [RBAC, "envoy.filters.network.tcp_proxy"]
    assert config.clusters["redis"].transport_socket.name == TLS
    # Same snapshot and parts without the hook: a different, plaintext cluster, not the TLS one.
    plain = generate(snap, "backend-1", parts=parts)
    assert not plain.clusters["redis"].HasField("transport_socket")


def test_the_rbac_filter_is_the_message_encoded_deterministically() -> None:
    """The filter's config is spliced from its rules, encoded once, and the listener's own stat
    prefix: it must be the bytes protobuf itself writes for that message, with no permission,
    one, or many (a map, whose order only deterministic encoding fixes)."""
    for count in (0, 1, 12):
        rules = rbac_pb2.RBAC(action=rbac_pb2.RBAC.ALLOW)
        for i in range(count):
            policy = rules.policies[f"allow-{i}"]
            policy.permissions.add(any=True)
            policy.principals.add().authenticated.principal_name.exact = f"spiffe://m/s{i}"
        security = InboundSecurity(rbac=rules)
        for listener in ("inbound:10.0.0.1:80", "inbound:10.0.0.2:8080"):
            (rbac,) = security.filters(listener)
            expected = network_rbac_pb2.RBAC(stat_prefix=f"{listener}.", rules=rules)
            assert rbac.name == RBAC
            assert rbac.typed_config.type_url.endswith("network.rbac.v3.RBAC")
            assert rbac.typed_config.value == expected.SerializeToString(deterministic=True)
