"""The API's composition root: `create_app(cfg, core)` wires the routes over the collaborators it
is given; nothing in here reads global config or opens connections."""

from __future__ import annotations

from flask import Flask

from kuma.admin_token import ensure_admin_token
from kuma.config import KumaCpConfig
from kuma.edge import http_metrics
from kuma.wiring import Core
from services.api.cors import install_cors, origin_matcher
from services.api.errors import register_error_handlers
from services.api.info_routes import info_blueprint
from services.api.insight_routes import insight_blueprint
from services.api.openapi import build_openapi
from services.api.overview_routes import overview_blueprint
from services.api.provided_ca_routes import provided_ca_blueprint
from services.api.resource_routes import resource_blueprint
from services.api.tokens_routes import tokens_blueprint
from services.api.write_guard import install_write_guard, same_host_names


def create_app(
    cfg: KumaCpConfig,
    core: Core,
    *,
    admin_token: str | None = None,
    trust_loopback: bool | None = None,
) -> Flask:
    """The Flask app of spec §4.

    `admin_token`: the token writes need (default: `apiServer.adminToken`, else the stored or
    newly generated one). `trust_loopback`: writes from this host need no token (default:
    `general.trustLoopback`).
    """
    read_only = cfg.api_server.read_only
    app = Flask("kuma-api")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.wsgi_app = http_metrics.measured(  # type: ignore[method-assign,assignment]
        app.wsgi_app, "api_server", app.url_map
    )
    token = admin_token if admin_token is not None else ensure_admin_token(cfg, core.store)
    install_cors(
        app, cfg.api_server.cors_allowed_domains, ["GET"] if read_only else ["GET", "PUT", "DELETE"]
    )
    if trust_loopback is None:
        trust_loopback = cfg.general.trust_loopback
    install_write_guard(
        app,
        token,
        trust_loopback=trust_loopback,
        local_names=same_host_names(cfg),
        origin_allowed=origin_matcher(cfg.api_server.cors_allowed_domains),
    )
    register_error_handlers(app)
    app.register_blueprint(info_blueprint(cfg, build_openapi(read_only=read_only)))
    app.register_blueprint(resource_blueprint(core.manager, read_only=read_only))
    app.register_blueprint(overview_blueprint(core.manager))
    app.register_blueprint(insight_blueprint(core.manager))
    # Kuma's admin server APIs (spec §5), served here under the admin credential; like it,
    # not switched off by `apiServer.readOnly`.
    app.register_blueprint(provided_ca_blueprint(core.store))
    token_api = cfg.admin_server.apis.dataplane_token
    if token_api.enabled:
        app.register_blueprint(tokens_blueprint(core.store, token_api.default_valid_for))
    return app
