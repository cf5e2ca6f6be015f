"""What each page shows, from the API's JSON: plain dicts and lists for the templates."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Any

from kuma.dataplane_status import overview_row
from kuma.resource_text import normalize_resource, render
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.insight import DataplaneInsightSpec
from kuma.resources.mesh import MeshSpec
from kuma.resources.registry import TYPES, get_type
from kuma.resources.wire import from_json

# The policy kinds the GUI lists: type name -> the API's plural (its URL segment too).
POLICY_KINDS = {
    t.name: t.plural
    for t in TYPES
    if t.plural and t.kumactl_get and t.name not in ("Mesh", "Dataplane")
}


def now() -> datetime:
    return datetime.now(UTC)


def mesh_summary(item: dict[str, Any], insight: dict[str, Any] | None) -> dict[str, Any]:
    """A Mesh with its counts, as the overview shows it."""
    mesh = from_json(item)
    spec: MeshSpec = mesh.spec
    metrics = "prometheus" if spec.metrics is not None and spec.metrics.prometheus else "off"
    logging = spec.logging
    backends = [b.name for b in logging.backends] if logging is not None else []
    return {
        "name": mesh.name,
        "mtls": "on" if spec.mtls_enabled else "off",
        "ca": spec.ca_kind,
        "metrics": metrics,
        "logging": backends,
        "dataplanes": (insight or {}).get("dataplanes", {"total": 0, "online": 0, "offline": 0}),
        "policies": {
            kind: ((insight or {}).get("policies", {}).get(kind) or {}).get("total", 0)
            for kind in POLICY_KINDS
        },
    }


def certificate(insight: DataplaneInsightSpec, at: datetime) -> dict[str, str] | None:
    mtls = insight.mtls
    if mtls is None or mtls.certificate_expiration_time is None:
        return None
    expires = mtls.certificate_expiration_time
    regenerated = mtls.last_certificate_regeneration
    return {
        "expires": expires.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "expires_in": _until(expires, at),
        "regenerated": regenerated.strftime("%Y-%m-%d %H:%M:%S UTC") if regenerated else "never",
        "regenerations": str(mtls.certificate_regenerations),
    }


def _until(moment: datetime, at: datetime) -> str:
    seconds = int((moment - at).total_seconds())
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(seconds, 3600)
    return f"in {hours}h{rest // 60}m" if hours else f"in {rest // 60}m{rest % 60}s"


def mtls_enabled(mesh: dict[str, Any]) -> bool:
    spec: MeshSpec = from_json(mesh).spec
    return spec.mtls_enabled


def dataplane_row(item: dict[str, Any], at: datetime, mtls: bool = True) -> dict[str, Any]:
    """One row of a dataplanes table: kumactl inspect's columns, plus the certificate while the
    mesh's mTLS is on (off, Envoy holds none: the insight's block is the last one's)."""
    _, name, tags, status, connected, updated, updates, errors = overview_row(item, at)
    insight = DataplaneInsightSpec.model_validate(item.get("dataplaneInsight") or {})
    return {
        "name": name,
        "tags": tags.split(" ") if tags else [],
        "status": status,
        "connected": connected,
        "updated": updated,
        "updates": updates,
        "errors": errors,
        "certificate": certificate(insight, at) if mtls else None,
    }


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def dataplane_detail(item: dict[str, Any], at: datetime, mtls: bool = True) -> dict[str, Any]:
    """A dataplane's page: its row, interfaces and subscriptions, newest first."""
    spec = DataplaneSpec.model_validate(item.get("dataplane") or {})
    insight = DataplaneInsightSpec.model_validate(item.get("dataplaneInsight") or {})
    subs = sorted(
        insight.subscriptions,
        key=lambda s: s.connect_time or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    return {
        **dataplane_row(item, at, mtls),
        "inbound": [
            {"interface": i.interface, "tags": [f"{k}={v}" for k, v in sorted(i.tags.items())]}
            for i in spec.networking.inbound
        ],
        "outbound": [
            {"interface": o.interface, "service": o.service} for o in spec.networking.outbound
        ],
        "gateway": (
            [f"{k}={v}" for k, v in sorted(spec.networking.gateway.tags.items())]
            if spec.networking.gateway
            else None
        ),
        "subscriptions": [
            {
                "id": s.id,
                "replica": s.control_plane_instance_id,
                "connected": _when(s.connect_time),
                "disconnected": _when(s.disconnect_time),
                "sent": s.status.total.responses_sent,
                "acked": s.status.total.responses_acknowledged,
                "rejected": s.status.total.responses_rejected,
            }
            for s in subs
        ],
    }


def policy_yaml(item: dict[str, Any]) -> str:
    """The policy as `kumactl get <kind> NAME -o yaml` prints it."""
    return render(normalize_resource(item), "yaml")


def kumactl_get_command(mesh: str, type_name: str, name: str) -> str:
    """The kumactl command that prints the policy as `policy_yaml` does."""
    singular = get_type(type_name).kumactl_delete
    return f"kumactl --mesh {shlex.quote(mesh)} get {singular} {shlex.quote(name)} -o yaml"


def tag_params(text: str) -> list[tuple[str, str]]:
    """The filter box's `key=value` pairs (spaces between) as the API's `tag=key:value`."""
    params = []
    for pair in text.split():
        key, sep, value = pair.partition("=")
        if sep and key:
            params.append(("tag", f"{key}:{value}"))
    return params
