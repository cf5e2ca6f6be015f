"""The GUI's composition root: `create_app(api_url)`. Every page is a plain GET whose URL says
all it shows (bookmarkable); `static/live.js` re-fetches the page's `<main>` every few seconds
(header `X-Kuma-Gui: fragment`) so it follows changes without a reload. Polling, not server-sent
events: no thread is held per open page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, render_template, request

from kuma import version as build
from services.gui import views
from services.gui.api_client import ApiClient, ApiUnavailable, segment
from services.gui.proxy import READ_METHODS, forward

PAGE_SIZE = 50
POLL_SECONDS = 2
FRAGMENT_HEADER = "X-Kuma-Gui"
HERE = Path(__file__).parent


def create_app(api_url: str, environment: str = "universal") -> Flask:
    app = Flask("kuma-gui", template_folder=HERE / "templates", static_folder=HERE / "static")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    api = ApiClient(api_url)
    pages = Pages(api)

    def page(view: Callable[..., tuple[str, dict[str, Any]]]) -> Callable[..., Response]:
        def handler(**kwargs: str) -> Response:
            fragment = request.headers.get(FRAGMENT_HEADER) == "fragment"
            try:
                template, context = view(**kwargs)
                status = 200
            except ApiUnavailable as exc:
                if exc.status == 404:
                    template, context, status = "error.html", {"error": exc}, 404
                else:
                    template, context, status = "error.html", {"error": exc}, 502
            html = render_template(
                template, fragment=fragment, poll_seconds=POLL_SECONDS, **context
            )
            response = Response(html, status=status, mimetype="text/html")
            response.headers["Cache-Control"] = "no-store"
            response.headers["Vary"] = FRAGMENT_HEADER
            return response

        handler.__name__ = view.__name__
        return handler

    app.add_url_rule("/", view_func=page(pages.overview))
    app.add_url_rule("/control-plane", view_func=page(pages.control_plane))
    app.add_url_rule("/meshes/<mesh>/dataplanes", view_func=page(pages.dataplanes))
    app.add_url_rule("/meshes/<mesh>/dataplanes/<name>", view_func=page(pages.dataplane))
    app.add_url_rule("/meshes/<mesh>/policies/<kind>", view_func=page(pages.policies))
    app.add_url_rule("/meshes/<mesh>/policies/<kind>/<name>", view_func=page(pages.policy))
    # Kuma's GUI asked its server where the API is (spec §12.4).
    app.add_url_rule("/config", "config", lambda: {"apiUrl": "/api", "environment": environment})
    app.add_url_rule(
        "/api/",
        "api_root",
        lambda: forward(api, ""),
        methods=[*READ_METHODS, "POST", "PUT", "DELETE", "PATCH"],
    )
    app.add_url_rule(
        "/api/<path:path>",
        "api",
        lambda path: forward(api, path),
        methods=[*READ_METHODS, "POST", "PUT", "DELETE", "PATCH"],
    )

    @app.after_request
    def headers(response: Response) -> Response:
        # Pages and assets are this origin's only: no framing, no foreign script.
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
        )
        return response

    return app


class Pages:
    """Each page: the template and what it shows, read from the API."""

    def __init__(self, api: ApiClient):
        self.api = api

    def overview(self) -> tuple[str, dict[str, Any]]:
        meshes = self.api.get("/meshes", [("size", "1000")])
        insights = self.api.get("/mesh-insights", [("size", "1000")])
        by_name = {i["name"]: i for i in insights["items"]}
        summaries = [views.mesh_summary(m, by_name.get(m["name"])) for m in meshes["items"]]
        return "overview.html", {
            "meshes": summaries,
            "more": meshes["total"] - len(summaries),
            "kinds": views.POLICY_KINDS,
        }

    def control_plane(self) -> tuple[str, dict[str, Any]]:
        index = self.api.get("/")
        status = self.api.get("/status/xds")
        return "control_plane.html", {
            "api_version": index.get("version", ""),
            "gui_version": build.version(),
            "replicas": status["replicas"],
            "rejections": status["rejections"],
        }

    def dataplanes(self, mesh: str) -> tuple[str, dict[str, Any]]:
        offset = _offset(request.args.get("offset", ""))
        tags = request.args.get("tag", "")
        params = [*views.tag_params(tags), ("size", str(PAGE_SIZE)), ("offset", str(offset))]
        insight = self.api.get(f"/mesh-insights/{segment(mesh)}")
        mtls = views.mtls_enabled(self.api.get(f"/meshes/{segment(mesh)}"))
        found = self.api.get(f"/meshes/{segment(mesh)}/dataplanes+insights", params)
        at = views.now()
        return "dataplanes.html", {
            "mesh": mesh,
            "counts": insight["dataplanes"],
            "rows": [views.dataplane_row(i, at, mtls) for i in found["items"]],
            "total": found["total"],
            "offset": offset,
            "size": PAGE_SIZE,
            "tags": tags,
        }

    def dataplane(self, mesh: str, name: str) -> tuple[str, dict[str, Any]]:
        base = f"/meshes/{segment(mesh)}"
        item = self.api.get(f"{base}/dataplanes+insights/{segment(name)}")
        policies = self.api.get(f"{base}/dataplanes/{segment(name)}/policies")
        mtls = views.mtls_enabled(self.api.get(base))
        return "dataplane.html", {
            "mesh": mesh,
            "dp": views.dataplane_detail(item, views.now(), mtls),
            "attachments": policies["items"],
            "plurals": views.POLICY_KINDS,
        }

    def policies(self, mesh: str, kind: str) -> tuple[str, dict[str, Any]]:
        type_name = _kind(kind)
        offset = _offset(request.args.get("offset", ""))
        found = self.api.get(
            f"/meshes/{segment(mesh)}/{kind}", [("size", str(PAGE_SIZE)), ("offset", str(offset))]
        )
        return "policies.html", {
            "mesh": mesh,
            "kind": kind,
            "type_name": type_name,
            "names": [i["name"] for i in found["items"]],
            "total": found["total"],
            "offset": offset,
            "size": PAGE_SIZE,
            "kinds": views.POLICY_KINDS,
        }

    def policy(self, mesh: str, kind: str, name: str) -> tuple[str, dict[str, Any]]:
        type_name = _kind(kind)
        item = self.api.get(f"/meshes/{segment(mesh)}/{kind}/{segment(name)}")
        return "policy.html", {
            "mesh": mesh,
            "kind": kind,
            "type_name": type_name,
            "name": name,
            "yaml": views.policy_yaml(item),
            "command": views.kumactl_get_command(mesh, type_name, name),
        }


def _kind(plural: str) -> str:
    for type_name, known in views.POLICY_KINDS.items():
        if known == plural:
            return type_name
    abort(404)


def _offset(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else 0
