"""The mTLS/RBAC seam: a hook's filters and sockets land where Envoy expects them, and the
mesh's parts keep clusters with different TLS apart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envoy.config.rbac.v3 import rbac_pb2

from services.xds.generator import InboundSecurity, generate
from services.xds.generator.parts import Parts
from tests.unit.xds.helpers import snapshot

ROOT = Path(__file__).resolve().parents[3]
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


# Prints the version of an inbound listener whose RBAC holds several permissions. Its policies
# are a protobuf map: serialized without `deterministic`, their order follows a hash seeded
# per process.
_VERSION_IN_A_FRESH_PROCESS = """
from services.xds.ads.cache import Packed
from services.xds.generator import generate
from services.xds.generator.security import MeshMtls
from services.xds.generator.snapshot import ResourceSet
from tests.unit.xds.helpers import resources, snapshot
from tests.unit.xds.test_security_hook import DOCS
permissions = [
    {"type": "TrafficPermission", "mesh": "default", "name": f"allow-{i}",
     "sources": [{"match": {"service": f"web-{i}"}}],
     "destinations": [{"match": {"service": "backend"}}]}
    for i in range(12)
]
hook = MeshMtls("default", ResourceSet(resources(permissions)))
config = generate(snapshot(DOCS), "backend-1", mtls=hook)
print(Packed.of("inbound", config.listeners["inbound:10.0.0.1:80"]).version)
"""


def test_a_listener_version_is_the_same_in_every_process() -> None:
    """Two xDS replicas (or one restarted) holding the same content give the same version: an
    Envoy that reconnects elsewhere is not sent its listeners again, which it would drain."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", _VERSION_IN_A_FRESH_PROCESS],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.strip()
        for _ in range(3)
    ]
    assert runs[0] and runs == [runs[0]] * 3
