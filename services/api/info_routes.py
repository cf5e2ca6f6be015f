"""`/`, `/catalog`, `/config` (spec §4.1, §4.8) and `/openapi.json`: documents computed once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from kuma import config as kconfig
from kuma import version as build
from services.api.responses import json_response


def _constant(body: Any) -> Any:
    def view() -> Response:
        return json_response(body)

    return view


def info_blueprint(cfg: kconfig.KumaCpConfig, openapi: dict[str, Any]) -> Blueprint:
    bp = Blueprint("info", __name__)
    configured = kconfig.autoconfigure(cfg)
    bp.add_url_rule(
        "/", "index", _constant({"tagline": "Kuma", "version": build.version()}), methods=["GET"]
    )
    bp.add_url_rule("/catalog", "catalog", _constant(kconfig.catalog(configured)), methods=["GET"])
    bp.add_url_rule(
        "/config", "config", _constant(kconfig.to_json(configured, True)), methods=["GET"]
    )
    bp.add_url_rule("/openapi.json", "openapi", _constant(openapi), methods=["GET"])
    return bp
