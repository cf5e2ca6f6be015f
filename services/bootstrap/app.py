"""The bootstrap service's composition root: `create_app(cfg, core)`.

`POST /bootstrap` (spec §7): parse the body (400), check the dataplane token (401), find the
Dataplane (404), answer its Envoy v3 bootstrap as YAML. The token is checked before the lookup so
that a caller without a valid token learns nothing about which Dataplanes exist.

Token verification follows `adminServer.apis.dataplaneToken.enabled` (env
`KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED`, default true; the deprecated
`dataplaneTokenServer.enabled` is folded into it by autoconfiguration). It is the same switch the
catalog advertises to kuma-dp, so kuma-dp and the server always agree on whether a token is needed
(Kuma's mismatch, spec §16.12, is avoided). Set it to false to run without tokens. With
`general.trustLoopback` (default true) a caller on this host may omit the token.

Transport. The port serves HTTPS with the control plane's certificate (`kuma.server_tls`) and
plain HTTP on the same socket (`kuma.edge.dual_listener`). Plain HTTP is answered only to a peer on
this host (a loopback address), so the README's walk-through
(`KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL=http://localhost:5682`) needs no flags. A plain-HTTP
request from any other address is refused with 403 before its body is read, with details saying
to use https://: a misconfigured dataplane fails loudly at its first try rather than working
with its token in plaintext, and nothing is answered in plaintext across hosts. Whether a
request came over TLS is its `wsgi.url_scheme`, which the dual-protocol servers set from the
connection alone, never from headers. This rule does not depend on `general.trustLoopback`,
which only decides whether a caller on this host needs a token.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from kuma import prom, server_tls, tokens
from kuma.config import KumaCpConfig, autoconfigure
from kuma.dataplane_auth import authenticator_for
from kuma.edge import http_metrics
from kuma.errors import ConfigError, KumaError, NotFoundError, error_body
from kuma.netutil import is_loopback
from kuma.resources.registry import DATAPLANE
from kuma.wiring import Core
from services.bootstrap.generator import BootstrapInput, build_bootstrap, to_yaml
from services.bootstrap.request import BootstrapRequest, parse_request

log = logging.getLogger("kuma.bootstrap")
YAML = "text/x-yaml"


def _error(status: int, title: str, details: str) -> Response:
    body = json.dumps(error_body(title, details))
    return Response(body, status=status, mimetype="application/json")


def _on_kuma_error(exc: KumaError) -> Response:
    if isinstance(exc, NotFoundError):
        details = (
            f"Dataplane {exc.name!r} in mesh {exc.mesh!r} not found. "
            "Did you first apply a Dataplane resource?"
        )
    elif exc.http_status >= 500:
        # the reason names hosts and users (a store's address): the log has it, not the body
        log.warning("bootstrap failed: %s", exc)
        details = exc.details
    else:
        details = str(exc) or exc.details
    return _error(exc.http_status, "Could not generate a bootstrap", details)


def _on_http_error(exc: HTTPException) -> Response:
    return _error(exc.code or 500, exc.name, exc.description or exc.name)


def _on_unexpected(exc: Exception) -> Response:
    log.exception("bootstrap failed")
    return _error(500, "Could not generate a bootstrap", "Internal Server Error")


def create_app(cfg: KumaCpConfig, core: Core) -> Flask:
    cfg = autoconfigure(cfg)
    params = cfg.bootstrap_server.params
    authenticator = authenticator_for(cfg, core.store)
    if authenticator.enabled and authenticator.reviewer is None:
        tokens.ensure_public_keys(core.store)  # public keys only (migrated from an old store)
    xds_ca = server_tls.load(cfg, core.store).cert_pem.decode()

    def bootstrap_for(req: BootstrapRequest, remote_addr: str | None) -> str:
        authenticator.check(req.mesh, req.name, req.dataplane_token, is_loopback(remote_addr))
        dataplane = core.manager.get(DATAPLANE, req.mesh, req.name)
        data = BootstrapInput(
            mesh=req.mesh,
            name=req.name,
            service=dataplane.spec.service(),
            admin_port=req.admin_port or params.admin_port,
            dataplane_token_path=req.dataplane_token_path,
            # Envoy trusts the CA kuma-dp was given, else the certificate xDS presents (this
            # one): kuma-dp took this answer over TLS or from this very host.
            xds_ca_pem=(req.ca_cert or xds_ca) if cfg.xds_server.tls_enabled else "",
            access_log_socket=req.access_log_socket_path,
        )
        try:
            return to_yaml(build_bootstrap(params, data))
        except ValueError as exc:  # xdsHost that gRPC cannot dial
            raise ConfigError(str(exc)) from None

    app = Flask("kuma-bootstrap")

    @app.before_request
    def plain_http_from_this_host_only() -> Response | None:
        if request.is_secure or is_loopback(request.remote_addr):
            return None
        return _error(
            403,
            "HTTPS required",
            "this server answers plain HTTP only to callers on its own host: use "
            f"https://{request.host}{request.path} (kuma-dp: an https:// bootstrap server URL, "
            "and --ca-cert-file to verify the control plane)",
        )

    @app.get("/metrics")
    def metrics() -> Response:
        body, content_type = prom.exposition()
        return Response(body, status=200, content_type=content_type)

    @app.post("/bootstrap")
    def bootstrap() -> Response:
        req = parse_request(request.get_data())
        return Response(bootstrap_for(req, request.remote_addr), status=200, mimetype=YAML)

    app.wsgi_app = http_metrics.measured(  # type: ignore[method-assign,assignment]
        app.wsgi_app, "dp_server", app.url_map
    )
    app.register_error_handler(KumaError, _on_kuma_error)
    app.register_error_handler(HTTPException, _on_http_error)
    app.register_error_handler(Exception, _on_unexpected)
    return app
