"""A bootstrap request while the store is gone: 503 that names no host, user or database (the
operator finds those in the log)."""

from __future__ import annotations

from dataclasses import replace

import psycopg

from kuma import tokens
from kuma.config import load_config
from kuma.store.migrate import migrate
from kuma.wiring import ensure_default_mesh, open_core
from tests.apply import apply
from tests.bootstrap.servers import dataplane, make_config, serve_bootstrap
from tests.conftest import PG_ADMIN_DSN, pg_env


def test_a_store_outage_is_503_without_the_stores_address(own_pg_database):
    dsn = " ".join(f"{k}={v}" for k, v in own_pg_database.items())
    migrate(dsn)
    cfg = replace(make_config(), store=load_config(env=pg_env(own_pg_database)).store)
    core = open_core(cfg)
    ensure_default_mesh(cfg, core.manager)
    server = serve_bootstrap(cfg, core)
    try:
        apply(core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
        token = tokens.issue(core.store, "default", "backend-1")
        body = {"mesh": "default", "name": "backend-1", "dataplaneToken": token}
        assert server.post(body).status_code == 200
        with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{own_pg_database["dbname"]}" WITH (FORCE)')
        response = server.post(body)
        assert response.status_code == 503, response.text
        assert response.json()["details"] == "Store unavailable"
        for secret in (own_pg_database["dbname"], own_pg_database["user"], "127.0.0.1", "5432"):
            assert secret not in response.text
    finally:
        server.stop()
        core.close()
