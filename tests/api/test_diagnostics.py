"""Diagnostics (5680): /healthy while up, /ready only while the store answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kuma.edge.diagnostics import diagnostics_app
from kuma.edge.wsgi_server import ThreadedWsgiServer
from kuma.store import MemoryStore
from tests.api.conftest import HOST


@pytest.fixture()
def serve_diagnostics() -> Iterator[Any]:
    servers: list[ThreadedWsgiServer] = []

    def serve(store: Any) -> str:
        server = ThreadedWsgiServer(diagnostics_app(store), HOST, 0, name="diagnostics-test")
        server.start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()


def test_healthy_and_ready(serve_diagnostics: Any):
    url = serve_diagnostics(MemoryStore())
    for path in ("/healthy", "/ready"):
        r = requests.get(url + path, timeout=5)
        assert (r.status_code, r.content) == (200, b"")
    assert requests.get(url + "/other", timeout=5).status_code == 404
    assert requests.post(url + "/ready", timeout=5).status_code == 405


def test_ready_is_503_when_the_store_is_down(
    serve_diagnostics: Any, migrated_pg: dict[str, str], pg_dsn: str
):
    from kuma.store import PostgresStore

    store = PostgresStore(pg_dsn, timeout=1.0)
    url = serve_diagnostics(store)
    assert requests.get(url + "/ready", timeout=5).status_code == 200
    store.close()  # the pool is gone: the store cannot be reached any more
    assert requests.get(url + "/ready", timeout=5).status_code == 503
    assert requests.get(url + "/healthy", timeout=5).status_code == 200


def test_metrics_in_prometheus_text_format(serve_diagnostics: Any):
    from services.xds.ads.counters import StreamCounters
    from services.xds.metrics import MetricsCallbacks

    cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    metrics, counters = MetricsCallbacks(), StreamCounters()
    metrics.on_open("s1", "default.web-1", None, counters)
    counters.response(cluster)  # a stream's response, as the stream counts it
    r = requests.get(serve_diagnostics(MemoryStore()) + "/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert f'xds_responses_sent{{type_url="{cluster}"}}' in r.text
    assert "# TYPE xds_delivery summary" in r.text
    assert "_created" not in r.text  # Kuma's Go client has no such series
    metrics.on_close("s1")
