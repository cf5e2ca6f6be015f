"""Envoy node identity (spec §7.2, §8.1): id `{mesh}.{name}` and the metadata kuma-dp sets."""

from __future__ import annotations

from typing import Any

from services.xds.generator import ProxyMetadata


def split_node_id(node_id: str) -> tuple[str, str] | None:
    """`{mesh}.{name}` -> (mesh, name). Mesh names have no dots; Dataplane names may (k8s)."""
    mesh, dot, name = node_id.partition(".")
    return (mesh, name) if dot and mesh and name else None


def node_id(mesh: str, name: str) -> str:
    return f"{mesh}.{name}"


def metadata_of(node: Any) -> ProxyMetadata:
    fields = node.metadata.fields if node is not None else {}
    port = fields.get("dataplane.admin.port")
    try:
        admin_port = int(port.string_value or port.number_value) if port is not None else 0
    except ValueError:
        admin_port = 0
    return ProxyMetadata(
        admin_port=admin_port,
        proxyless=is_proxyless(node),
    )


def is_proxyless(node: Any) -> bool:
    """gRPC's xDS client names itself `gRPC <language>` in node.user_agent_name; Envoy says
    `envoy`. kuma-dp or a user may also set metadata `dataplane.proxyless: true`."""
    if node is None:
        return False
    flag = node.metadata.fields.get("dataplane.proxyless")
    if flag is not None:
        return flag.bool_value or flag.string_value == "true"
    return node.user_agent_name.lower().startswith("grpc")


class NodeStreams:
    """The open streams of each node, and what its Envoy says of itself (node metadata).

    Every stream of a node was authenticated as that node (services/xds/auth.py); its claims are
    taken from the newest stream still open, so that a stream gone away takes its claims with
    it. A stream that does not describe its node (SDS) counts as open but claims nothing."""

    def __init__(self) -> None:
        # node id -> {stream id: what that stream's Envoy told us}, oldest stream first
        self._claims: dict[str, dict[str, ProxyMetadata]] = {}
        self._nodes: dict[str, str] = {}  # stream id -> node id

    def __len__(self) -> int:
        return len(self._nodes)

    def open(self, stream_id: str, node_id: str, node: Any) -> None:
        self._nodes[stream_id] = node_id
        if node is not None:
            self._claims.setdefault(node_id, {})[stream_id] = metadata_of(node)

    def close(self, stream_id: str) -> tuple[str, bool] | None:
        """Forget the stream: its node, and whether what the node claims changed (None for a
        stream never opened). Once its last describing stream is gone a node claims nothing."""
        node_id = self._nodes.pop(stream_id, None)
        if node_id is None:
            return None
        claims = self._claims.get(node_id, {})
        before = self.metadata(node_id)
        claims.pop(stream_id, None)
        if not claims:
            self._claims.pop(node_id, None)
        return node_id, self.metadata(node_id) != before

    def metadata(self, node_id: str) -> ProxyMetadata | None:
        claims = self._claims.get(node_id)
        return next(reversed(claims.values())) if claims else None
