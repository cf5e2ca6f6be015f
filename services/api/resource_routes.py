"""`/meshes`, `/meshes/{name}` and `/meshes/{mesh}/{plural}[/{name}]` for every type the registry
exposes (spec §4.1-§4.5): the routes are generated from the registry, the work is the
manager's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request

from kuma.errors import NotFoundError
from kuma.manager import ResourceManager
from kuma.resources.base import Resource
from kuma.resources.registry import TYPES, ResourceType
from kuma.resources.wire import to_json
from services.api.errors import titled
from services.api.pagination import list_body, page_request
from services.api.put_body import read_resource
from services.api.responses import empty_response, json_response

RETRIEVE = "Could not retrieve a resource"
RETRIEVE_LIST = "Could not retrieve resources"
PROCESS = "Could not process a resource"
FIND = "Could not find a resource"
CREATE = "Could not create a resource"
UPDATE = "Could not update a resource"
DELETE = "Could not delete a resource"


def storable(*keys: str) -> bool:
    """False for keys no store can hold (NUL characters): such a resource cannot exist."""
    return not any("\x00" in key for key in keys)


class ResourceEndpoints:
    """The endpoints of one resource type."""

    def __init__(self, manager: ResourceManager, rtype: ResourceType):
        self.manager = manager
        self.rtype = rtype

    def _mesh_of(self, mesh: str, name: str) -> str:
        return name if self.rtype.is_mesh else mesh

    def list_page(self, mesh: str | None = None) -> Response:
        with titled(RETRIEVE_LIST):
            page = page_request(request)
            items: list[dict[str, Any]] = []
            total = 0
            if mesh is None or storable(mesh):
                found = self.manager.list(
                    self.rtype.name, mesh, offset=page.offset, limit=page.size
                )
                items, total = [to_json(r) for r in found.items], found.total
        return json_response(list_body(request, page, items, total))

    def get(self, name: str, mesh: str = "") -> Response:
        mesh = self._mesh_of(mesh, name)
        with titled(RETRIEVE):
            if not storable(mesh, name):
                raise NotFoundError(self.rtype.name, mesh, name)
            found = self.manager.get(self.rtype.name, mesh, name)
        return json_response(to_json(found))

    def put(self, name: str, mesh: str = "") -> Response:
        mesh = self._mesh_of(mesh, name)
        with titled(PROCESS):
            resource = read_resource(request.get_data(), self.rtype, mesh, name)
        with titled(FIND):
            current = self._current(resource)
        if current is None:
            with titled(CREATE):
                self.manager.create(resource)
            return empty_response(201)
        with titled(UPDATE):
            self.manager.update(replace(resource, version=current.version))
        return empty_response(200)

    def _current(self, resource: Resource) -> Resource | None:
        try:
            return self.manager.get(resource.type, resource.mesh, resource.name)
        except NotFoundError:
            return None

    def delete(self, name: str, mesh: str = "") -> Response:
        mesh = self._mesh_of(mesh, name)
        with titled(DELETE):
            if not storable(mesh, name):
                raise NotFoundError(self.rtype.name, mesh, name)
            self.manager.delete(self.rtype.name, mesh, name)
        return empty_response(200)


def resource_blueprint(manager: ResourceManager, *, read_only: bool) -> Blueprint:
    """Every exposed type's routes; without PUT/DELETE in read-only mode (405, spec §4.6)."""
    bp = Blueprint("resources", __name__)
    writes = [] if read_only else ["PUT", "DELETE"]
    for rtype in TYPES:
        if not rtype.exposed:
            continue
        ep = ResourceEndpoints(manager, rtype)
        if rtype.is_mesh:
            collection, item = "/meshes", "/meshes/<name>"
        else:
            collection = f"/meshes/<mesh>/{rtype.plural}"
            item = f"{collection}/<name>"
        key = rtype.name
        bp.add_url_rule(collection, f"list_{key}", ep.list_page, methods=["GET"])
        bp.add_url_rule(item, f"get_{key}", ep.get, methods=["GET"])
        if writes:
            bp.add_url_rule(item, f"put_{key}", ep.put, methods=["PUT"])
            bp.add_url_rule(item, f"delete_{key}", ep.delete, methods=["DELETE"])
    return bp
