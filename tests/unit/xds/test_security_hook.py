"""The mTLS/RBAC seam (§8.11-§8.12 come later): a hook's filters and sockets land where Envoy
expects them, and the shared cluster cache keeps clusters with different TLS apart."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from services.xds.generator import InboundSecurity, generate
from services.xds.generator.builders import network_filter, pack
from tests.unit.xds.helpers import bootstrap, envoy_validate, snapshot

RBAC = "envoy.filters.network.rbac"
TLS = "envoy.transport_sockets.tls"


class DenyAllHook:
    key = "deny-all"

    def inbound(self, listener_name: str, tags: Mapping[str, str]) -> InboundSecurity:
        rbac = rbac_pb2.RBAC(stat_prefix=listener_name)
        rbac.rules.SetInParent()  # no policies: every connection is denied
        return InboundSecurity(filters=(network_filter(RBAC, rbac),))

    def upstream(self, service: str) -> base_pb2.TransportSocket | None:
        return base_pb2.TransportSocket(name=TLS, typed_config=pack(tls_pb2.UpstreamTlsContext()))


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


def test_hook_adds_rbac_first_and_upstream_tls(tmp_path: Path) -> None:
    snap = snapshot(DOCS)
    config = generate(snap, "backend-1", mtls=DenyAllHook())
    filters = config.listeners["inbound:10.0.0.1:80"].filter_chains[0].filters
    assert [f.name for f in filters] == [RBAC, "envoy.filters.network.tcp_proxy"]
    assert config.clusters["redis"].transport_socket.name == TLS
    boot = bootstrap(config, "default.backend-1", "backend")
    assert envoy_validate(boot, tmp_path).returncode == 0
    # Same snapshot without the hook: a different, plaintext cluster, not the cached TLS one.
    assert not generate(snap, "backend-1").clusters["redis"].HasField("transport_socket")
