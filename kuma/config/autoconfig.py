"""What kuma-cp derives from its config: the autoconfigured values (spec §2.4) and the
`GET /catalog` document built from them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kuma.config.schema import (
    AdminServerApisConfig,
    AdminServerConfig,
    DataplaneTokenServerConfig,
    KumaCpConfig,
)


def autoconfigure(cfg: KumaCpConfig) -> KumaCpConfig:
    """Spec §2.4 items 1, 3, 4 (the catalog, item 2, is `catalog`). Idempotent."""
    admin, dts = cfg.admin_server, cfg.dataplane_token_server
    if dts != DataplaneTokenServerConfig():  # the deprecated section was used: it wins entirely
        token_api = AdminServerApisConfig(replace(admin.apis.dataplane_token, enabled=dts.enabled))
        admin = AdminServerConfig(local=dts.local, public=dts.public, apis=token_api)
    if admin.public.enabled and admin.public.port == 0:
        admin = replace(admin, public=replace(admin.public, port=admin.local.port))
    params = cfg.bootstrap_server.params
    params = replace(
        params,
        xds_host=params.xds_host or cfg.general.advertised_hostname,
        xds_port=params.xds_port or cfg.xds_server.grpc_port,
    )
    return replace(
        cfg,
        admin_server=admin,
        bootstrap_server=replace(cfg.bootstrap_server, params=params),
        gui_server=replace(
            cfg.gui_server, api_server_url=f"http://localhost:{cfg.api_server.port}"
        ),
    )


def catalog(cfg: KumaCpConfig) -> dict[str, Any]:
    """The `GET /catalog` document (spec §2.4 item 2, §4.8), from the autoconfigured `cfg`."""
    cfg = autoconfigure(cfg)
    host, admin = cfg.general.advertised_hostname, cfg.admin_server
    # Kuma's admin server APIs (`POST /tokens`, the provided CA) are served by the API itself
    # (docs/compat.md): nothing listens on adminServer.local.port. No `publicUrl`: Kuma's was
    # HTTPS with client certificates, which no server here offers; other hosts use the API's
    # address with the admin token.
    admin_urls = {"localUrl": f"http://localhost:{cfg.api_server.port}", "publicUrl": ""}
    # kuma-dp asks for a token iff dataplaneToken.localUrl is non-empty
    token_on = admin.apis.dataplane_token.enabled
    return {
        "apis": {
            "bootstrap": {"url": f"https://{host}:{cfg.bootstrap_server.port}"},
            "dataplaneToken": {k: v if token_on else "" for k, v in admin_urls.items()},
            "admin": admin_urls,
            # MADS speaks TLS with 5678 (xdsServer.tlsEnabled): grpcs://, as Kuma's client reads it
            "monitoringAssignment": {
                "url": f"{'grpcs' if cfg.xds_server.tls_enabled else 'grpc'}://{host}:"
                f"{cfg.monitoring_assignment_server.grpc_port}"
            },
        }
    }
