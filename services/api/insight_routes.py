"""Read-only views for the GUI and kumactl, computed from the store on request:

- `/mesh-insights[/{mesh}]`: per mesh, dataplanes total/online/offline and policies per kind
  (Kuma 1.x's MeshInsight), so a first screen needs no paging through a large mesh;
- `/meshes/{mesh}/dataplanes/{name}/policies`: the policies that select one dataplane and where
  each applies (Kuma 1.x's inspect API), chosen by the same matcher the xDS generator uses;
- `/status/xds`: the xDS replicas (heartbeats, open streams) and recent rejected updates.

Mesh insights and the xDS status read every DataplaneInsight of a mesh (about 1 s for 10,000 on
Postgres), and every open GUI page polls them: each process keeps its last answer while the
store's revision is unchanged, or for `FRESH_FOR` seconds (counts then lag by at most that)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from kuma.dataplane_policies import Attachment, MeshPolicies, attachments
from kuma.errors import NotFoundError
from kuma.manager import ResourceManager
from kuma.mesh_insight import mesh_insight, xds_status
from kuma.resources.registry import (
    DATAPLANE,
    HEALTH_CHECK,
    MESH,
    PROXY_TEMPLATE,
    TRAFFIC_LOG,
    TRAFFIC_PERMISSION,
    TRAFFIC_ROUTE,
)
from kuma.resources.wire import to_json
from services.api.errors import titled
from services.api.pagination import list_body, page_request
from services.api.resource_routes import storable
from services.api.responses import json_response

RETRIEVE = "Could not retrieve a mesh insight"
RETRIEVE_LIST = "Could not retrieve mesh insights"
RETRIEVE_POLICIES = "Could not retrieve the policies of a dataplane"
RETRIEVE_STATUS = "Could not retrieve the xDS status"
FRESH_FOR = 1.0
_KEPT_AT_MOST = 1000


class _Recent:
    """Answers kept per key while the store's revision is unchanged or for `FRESH_FOR` s."""

    def __init__(self, revision: Callable[[], int]):
        self._revision = revision
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[int, float, Any]] = {}

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        revision, now = self._revision(), time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and (kept[0] == revision or now - kept[1] < FRESH_FOR):
            return kept[2]
        value = compute()
        with self._lock:
            if len(self._kept) >= _KEPT_AT_MOST:
                self._kept.clear()
            self._kept[key] = (revision, now, value)
        return value


class InsightEndpoints:
    def __init__(self, manager: ResourceManager):
        self.manager = manager
        self.recent = _Recent(manager.store.revision)

    def _mesh_insight(self, mesh: str) -> Any:
        return self.recent.get(mesh, lambda: mesh_insight(self.manager.store, mesh))

    def mesh_insight(self, mesh: str) -> Response:
        with titled(RETRIEVE):
            if not storable(mesh):
                raise NotFoundError(MESH, mesh, mesh)
            self.manager.get(MESH, mesh, mesh)  # 404 for a mesh that does not exist
            body = self._mesh_insight(mesh)
        return json_response(body)

    def mesh_insights(self) -> Response:
        with titled(RETRIEVE_LIST):
            page = page_request(request)
            found = self.manager.list(MESH, offset=page.offset, limit=page.size)
            items = [self._mesh_insight(m.name) for m in found.items]
        return json_response(list_body(request, page, items, found.total))

    def dataplane_policies(self, mesh: str, name: str) -> Response:
        with titled(RETRIEVE_POLICIES):
            if not storable(mesh, name):
                raise NotFoundError(DATAPLANE, mesh, name)
            dataplane = self.manager.get(DATAPLANE, mesh, name)
            policies = MeshPolicies(
                **{
                    field: self.manager.list(type_name, mesh).items
                    for field, type_name in _POLICY_FIELDS.items()
                }
            )
            items = [_attachment_json(a) for a in attachments(dataplane.spec, policies)]
        return json_response({"total": len(items), "items": items})

    def xds(self) -> Response:
        with titled(RETRIEVE_STATUS):
            # keyed apart from meshes: a mesh name cannot contain "/"
            body = self.recent.get("/status/xds", lambda: xds_status(self.manager.store))
        return json_response(body)


_POLICY_FIELDS = {
    "traffic_permissions": TRAFFIC_PERMISSION,
    "traffic_routes": TRAFFIC_ROUTE,
    "traffic_logs": TRAFFIC_LOG,
    "health_checks": HEALTH_CHECK,
    "proxy_templates": PROXY_TEMPLATE,
}


def _attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {
        "type": attachment.kind,
        "name": attachment.name,
        "service": attachment.service,
        "matchedPolicies": {
            kind: [to_json(p) for p in found] for kind, found in attachment.policies.items()
        },
    }


def insight_blueprint(manager: ResourceManager) -> Blueprint:
    bp = Blueprint("insights", __name__)
    ep = InsightEndpoints(manager)
    bp.add_url_rule("/mesh-insights", "list_mesh_insights", ep.mesh_insights, methods=["GET"])
    bp.add_url_rule("/mesh-insights/<mesh>", "get_mesh_insight", ep.mesh_insight, methods=["GET"])
    bp.add_url_rule(
        "/meshes/<mesh>/dataplanes/<name>/policies",
        "get_dataplane_policies",
        ep.dataplane_policies,
        methods=["GET"],
    )
    bp.add_url_rule("/status/xds", "xds_status", ep.xds, methods=["GET"])
    return bp
