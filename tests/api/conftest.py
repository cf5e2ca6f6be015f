"""API tests run over real HTTP: each app is served by the embedded waitress server on
127.0.0.1 and an OS-picked port, against the memory store or the session's fresh Postgres
database (migrated once; emptied before each test)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from kuma.config import KumaCpConfig, load_config
from kuma.edge.wsgi_server import ThreadedWsgiServer
from kuma.wiring import Core, ensure_default_mesh, open_core
from services.api.app import create_app
from tests.conftest import pg_env as base_pg_env

HOST = "127.0.0.1"


def pg_env(pg_database: Mapping[str, str]) -> dict[str, str]:
    """KUMA_* env vars pointing kuma-cp config at the test database."""
    return {**base_pg_env(pg_database), "KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS": "8"}


@dataclass
class Api:
    """A served app and a client for it."""

    url: str
    core: Core
    cfg: KumaCpConfig
    http: requests.Session

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url + path, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None and not isinstance(body, str | bytes):
            kwargs["json"] = body
        elif body is not None:
            kwargs["data"] = body
        return self.http.put(self.url + path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.delete(self.url + path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.options(self.url + path, **kwargs)


Serve = Callable[..., Api]


@pytest.fixture(scope="session")
def migrated_pg(pg_database: dict[str, str], pg_dsn: str) -> dict[str, str]:
    from kuma.store.migrate import migrate

    migrate(pg_dsn)
    return pg_database


def _wipe(core: Core, cfg: KumaCpConfig) -> None:
    """Delete every Mesh (and so everything in it), then re-create the default Mesh."""
    from kuma.resources.registry import MESH

    for mesh in core.manager.list(MESH).items:
        core.manager.delete(MESH, mesh.name, mesh.name)
    ensure_default_mesh(cfg, core.manager)


@pytest.fixture(scope="session")
def serve_session() -> Iterator[Serve]:
    """Start an app on its own server; everything started is stopped at session end."""
    started: list[tuple[ThreadedWsgiServer, Core, requests.Session]] = []

    def serve(
        env: Mapping[str, str] | None = None,
        core: Core | None = None,
        host: str = HOST,
        **app_kwargs: Any,
    ) -> Api:
        cfg = load_config(env=dict(env or {}))
        own_core = core or open_core(cfg, name="kuma-api-test")
        ensure_default_mesh(cfg, own_core.manager)
        app = create_app(cfg, own_core, **app_kwargs)
        server = ThreadedWsgiServer(app, host, 0, name="api-test")
        server.start()
        http = requests.Session()
        started.append((server, own_core, http))
        return Api(server.url, own_core, cfg, http)

    yield serve
    for server, core, http in reversed(started):
        http.close()
        server.stop()
        core.close()


@pytest.fixture(scope="session")
def memory_api(serve_session: Serve) -> Api:
    return serve_session()


@pytest.fixture(scope="session")
def postgres_api(serve_session: Serve, migrated_pg: dict[str, str]) -> Api:
    return serve_session(pg_env(migrated_pg))


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest) -> Api:
    """The default app (writes from this host allowed), on each store, with only Mesh default."""
    served: Api = request.getfixturevalue(f"{request.param}_api")
    _wipe(served.core, served.cfg)
    return served


@pytest.fixture()
def memory_only_api(memory_api: Api) -> Api:
    _wipe(memory_api.core, memory_api.cfg)
    return memory_api


@pytest.fixture(scope="session")
def kuma_env() -> dict[str, str]:
    """The environment for subprocesses: no inherited KUMA_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
