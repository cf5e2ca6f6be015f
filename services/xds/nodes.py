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
