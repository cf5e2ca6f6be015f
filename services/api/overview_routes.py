"""`/meshes/{mesh}/dataplanes+insights[/{name}]` (spec §4.7): Dataplanes joined with their
DataplaneInsights, filtered by repeatable `tag=key:value` parameters, paginated like lists."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Blueprint, Response, request

from kuma.errors import NotFoundError
from kuma.manager import ResourceManager
from kuma.resources.base import Resource
from kuma.resources.registry import DATAPLANE, DATAPLANE_INSIGHT
from kuma.resources.registry import encode_spec as spec_json
from services.api.errors import titled
from services.api.pagination import PageRequest, list_body, page_request
from services.api.resource_routes import storable
from services.api.responses import json_response

OVERVIEW = "DataplaneOverview"
RETRIEVE = "Could not retrieve a dataplane overview"
RETRIEVE_LIST = "Could not retrieve dataplane overviews"


def tag_selector(values: list[str]) -> dict[str, str]:
    """`key:value` pairs; anything that does not split into exactly two parts is ignored."""
    selector: dict[str, str] = {}
    for value in values:
        parts = value.split(":")
        if len(parts) == 2:
            selector[parts[0]] = parts[1]
    return selector


def overview_json(dataplane: Resource, insight: Resource | None, *, empty: bool) -> dict[str, Any]:
    """One DataplaneOverview; without an insight, `{}` when `empty` else no key (spec §4.7)."""
    out: dict[str, Any] = {
        "type": OVERVIEW,
        "mesh": dataplane.mesh,
        "name": dataplane.name,
        "dataplane": spec_json(dataplane.spec),
    }
    if insight is not None:
        out["dataplaneInsight"] = spec_json(insight.spec)
    elif empty:
        out["dataplaneInsight"] = {}
    return out


class OverviewEndpoints:
    def __init__(self, manager: ResourceManager):
        self.manager = manager

    def get(self, mesh: str, name: str) -> Response:
        with titled(RETRIEVE):
            if not storable(mesh, name):
                raise NotFoundError(DATAPLANE, mesh, name)
            dataplane = self.manager.get(DATAPLANE, mesh, name)
            try:
                insight: Resource | None = self.manager.get(DATAPLANE_INSIGHT, mesh, name)
            except NotFoundError:
                insight = None
        return json_response(overview_json(dataplane, insight, empty=True))

    def list_page(self, mesh: str) -> Response:
        with titled(RETRIEVE_LIST):
            page = page_request(request)
            selector = tag_selector(request.args.getlist("tag"))
            dataplanes: list[Resource] = []
            total = 0
            if storable(mesh):
                dataplanes, total = self._dataplanes(mesh, selector, page)
            insights = self._insights(mesh, dataplanes, total)
        items = [overview_json(dp, insights.get(dp.name), empty=False) for dp in dataplanes]
        return json_response(list_body(request, page, items, total))

    def _dataplanes(
        self, mesh: str, selector: dict[str, str], page: PageRequest
    ) -> tuple[list[Resource], int]:
        if not selector:  # the store pages
            found = self.manager.list(DATAPLANE, mesh, offset=page.offset, limit=page.size)
            return found.items, found.total
        every = self.manager.list(DATAPLANE, mesh).items
        kept = [dp for dp in every if dp.spec.matches(selector)]
        return kept[page.offset : page.offset + page.size], len(kept)

    def _insights(self, mesh: str, dataplanes: list[Resource], total: int) -> dict[str, Resource]:
        if not dataplanes:
            return {}
        # One read per dataplane for a small page, or a page of a large mesh (a GUI table of
        # 50 out of 10,000); else one list of the mesh's insights.
        if len(dataplanes) <= 10 or len(dataplanes) * 10 <= total:
            out = {}
            for dp in dataplanes:
                with contextlib.suppress(NotFoundError):
                    out[dp.name] = self.manager.get(DATAPLANE_INSIGHT, mesh, dp.name)
            return out
        wanted = {dp.name for dp in dataplanes}
        every = self.manager.list(DATAPLANE_INSIGHT, mesh).items
        return {i.name: i for i in every if i.name in wanted}


def overview_blueprint(manager: ResourceManager) -> Blueprint:
    bp = Blueprint("overviews", __name__)
    ep = OverviewEndpoints(manager)
    collection = "/meshes/<mesh>/dataplanes+insights"
    bp.add_url_rule(collection, "list_overviews", ep.list_page, methods=["GET"])
    bp.add_url_rule(f"{collection}/<name>", "get_overview", ep.get, methods=["GET"])
    return bp
