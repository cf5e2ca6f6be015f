"""The injector's composition root: `create_app(cfg, meshes)`.

`POST /inject-sidecar` (spec §11.1): an AdmissionReview (admission.k8s.io/v1 or v1beta1) in, the
same apiVersion out. `GET /healthy`, `GET /ready`: 200. `GET /metrics`: Prometheus metrics
(`services/injector/metrics.py`; all gunicorn workers together, `kuma.prom`).

Namespace labels: an AdmissionReview does not carry them. The shipped
MutatingWebhookConfiguration (`kumactl install control-plane`) has the namespaceSelector
`kuma.io/sidecar-injection: enabled`, so kube-apiserver only sends Pods of labelled namespaces
here: every request to `/inject-sidecar` is treated as coming from a labelled namespace. A Pod
opts out with the annotation `kuma.io/sidecar-injection: disabled`. (Needs no Kubernetes API
access or RBAC; the rule function `inject.decide` takes the labels as an argument, so a lookup
can replace this without touching the rules.)
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from kuma import prom
from kuma.errors import StoreUnavailableError, error_body
from services.injector import inject
from services.injector.admission import review
from services.injector.config import InjectorConfig
from services.injector.meshes import MeshLookup
from services.injector.metrics import WEBHOOK_PATH, install_webhook_metrics

log = logging.getLogger("kuma.injector")
JSON = "application/json"
LABELLED_NAMESPACE = {inject.INJECTION: inject.ENABLED}


def _error(status: int, title: str, details: str) -> Response:
    return Response(json.dumps(error_body(title, details)), status=status, mimetype=JSON)


def create_app(cfg: InjectorConfig, meshes: MeshLookup) -> Flask:
    app = Flask("kuma-injector")
    install_webhook_metrics(app)
    section = cfg.injector

    @app.post(WEBHOOK_PATH)
    def inject_sidecar() -> Response:
        answer = review(request.get_data(), LABELLED_NAMESPACE, meshes, section)
        return Response(json.dumps(answer), status=200, mimetype=JSON)

    @app.get("/healthy")
    def healthy() -> Response:
        return Response("", status=200)

    @app.get("/metrics")
    def metrics() -> Response:
        body, content_type = prom.exposition()
        return Response(body, status=200, content_type=content_type)

    @app.get("/ready")
    def ready() -> Response:
        return Response("", status=200)

    @app.errorhandler(StoreUnavailableError)
    def unavailable(exc: StoreUnavailableError) -> Response:
        log.warning("cannot answer an admission request: %s", exc)
        return _error(503, "Control plane unavailable", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("injector failed")
        return _error(500, "Internal Server Error", "Internal Server Error")

    return app
