"""A real Prometheus scraping real Envoys through `kuma-prometheus-sd` (issue 19, spec §12.3):
`kuma-cp run` with same-host trust off and the admin token, a Mesh with `metrics.prometheus`,
`kuma-dp run` + Envoy per Dataplane (each with its own scrape port: they share 127.0.0.1),
`kuma-prometheus-sd run` with the admin token and the control plane's CA over TLS, and Debian's
Prometheus (installed when missing) on a free port with its own data directory, reading the
file_sd file. Prometheus's own API must report the Envoys `up` with Kuma's labels, a new
Dataplane must appear and a deleted one disappear."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port
from tests.prometheus import PrometheusServer, prometheus_binary
from tests.security.harness import ADMIN_TOKEN, BIN, ControlPlane, Processes, clean_env
from tests.unit.test_grafana_dashboard import DASHBOARD, metric_names, queries
from tests.waiting import wait_until

pytestmark = pytest.mark.envoy

# Prometheus applies discovered targets at most every 5 s: allow a few rounds.
CHANGE_TIMEOUT = 30
# Dashboard series this scenario does not make: no write conflicts, no mTLS (no certificate),
# no request through the Envoys (no upstream 5xx, no upstream latency samples).
NOT_MADE_HERE = {
    "store_conflicts",
    "cert_generation",
    "envoy_cluster_upstream_rq_xx",
    "envoy_cluster_upstream_rq_time_bucket",
}


@pytest.fixture()
def procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(processes.logs())
        processes.stop_all()


class Sidecar:
    """A Dataplane with its own Prometheus port, and its kuma-dp."""

    def __init__(self, cp: ControlPlane, name: str, tags: dict[str, str], **prometheus: Any):
        self.cp, self.name = cp, name
        self.metrics_port = free_port()
        cp.apply(
            {
                "type": "Dataplane",
                "mesh": "default",
                "name": name,
                "networking": {
                    "inbound": [
                        {"interface": f"127.0.0.1:{free_port()}:{free_port()}", "tags": tags}
                    ]
                },
                "metrics": {"prometheus": {"port": self.metrics_port, **prometheus}},
            }
        )
        token = cp.procs.workdir / f"{name}.token"
        token.write_text(cp.token(name) + "\n")
        cp.procs.start(
            name,
            [
                str(BIN / "kuma-dp"),
                "run",
                "--name",
                name,
                "--bootstrap-server-url",
                f"http://127.0.0.1:{cp.bootstrap_port}",
                "--admin-port",
                str(free_port()),
                "--dataplane-token-file",
                str(token),
                "--ca-cert-file",
                str(cp.ca_file),
                "--drain-time",
                "1s",
                "--",
                "--log-level",
                "warning",
            ],
            clean_env(),
        )


def by_dataplane(prom: PrometheusServer) -> dict[str, dict[str, Any]]:
    # the control plane's own target (no `dataplane` label) is not one of them
    return {t["labels"]["dataplane"]: t for t in prom.targets() if "dataplane" in t["labels"]}


def all_up(prom: PrometheusServer, names: set[str]) -> dict[str, dict[str, Any]] | None:
    targets = by_dataplane(prom)
    if set(targets) == names and all(t["health"] == "up" for t in targets.values()):
        return targets
    return None


def value(prom: PrometheusServer, query: str) -> float:
    """The one value `query` gives now (0 when it gives none)."""
    result = prom.api("query?" + urllib.parse.urlencode({"query": query}))["result"]
    return sum(float(series["value"][1]) for series in result)


def control_plane_metrics(prom: PrometheusServer) -> None:
    """kuma-cp's `/metrics`, scraped: Kuma's xDS metrics with their types, counting the two
    Envoys' streams and ACKed pushes; and every query of the Grafana dashboard evaluates over
    series that Prometheus scraped (a misspelt name would evaluate to nothing, silently)."""
    cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    wait_until(
        lambda: (
            value(prom, "sum(xds_streams_active)") == 2 and value(prom, "xds_delivery_count") > 0
        ),
        15,
        "kuma-cp's xDS metrics in Prometheus",
    )
    assert value(prom, f'xds_responses_sent{{type_url="{cluster}"}}') >= 2
    assert value(prom, f'xds_requests_received{{type_url="{cluster}",confirmation="ACK"}}') >= 2
    assert value(prom, "xds_generation_count") > 0
    assert value(prom, 'store_count{operation="get",resource_type="Dataplane"}') > 0
    metadata = prom.api("metadata")
    assert metadata["xds_delivery"][0]["type"] == "summary"
    assert metadata["xds_generation"][0]["type"] == "summary"
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = list(queries(dashboard["panels"]))
    for expr in exprs:
        instant = expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
        prom.api("query?" + urllib.parse.urlencode({"query": instant.replace("$mesh", ".*")}))
    scraped = set(prom.api("label/__name__/values"))
    named = {name for expr in exprs for name in metric_names(expr)}
    assert named - NOT_MADE_HERE <= scraped, sorted(named - NOT_MADE_HERE - scraped)
    assert named >= NOT_MADE_HERE  # the list names only what the dashboard queries


def test_prometheus_scrapes_the_dataplanes_kuma_prometheus_sd_names(
    procs: Processes, tmp_path: Path
):
    binary = prometheus_binary()
    cp = ControlPlane(procs, KUMA_GENERAL_TRUST_LOOPBACK="false")
    cp.start()
    cp.apply({"type": "Mesh", "name": "default", "metrics": {"prometheus": {}}})
    web = Sidecar(cp, "web-1", {"service": "web", "version": "v1"})
    backend = Sidecar(cp, "backend-1", {"service": "backend", "env": "test"}, path="/stats")

    token_file = tmp_path / "admin.token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    output = tmp_path / "sd" / "kuma.file_sd.json"  # the directory is made at start
    procs.start(
        "kuma-prometheus-sd",
        [
            str(BIN / "kuma-prometheus-sd"),
            "run",
            "--cp-address",
            cp.api,
            "--name",
            "test-sd",
            "--output-file",
            str(output),
            "--ca-cert-file",
            str(cp.ca_file),
            "--admin-token-file",
            str(token_file),
        ],
        clean_env(),
    )
    cp.wait_until(output.exists, 30, "kuma-prometheus-sd's file")

    config = f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: kuma-dataplanes
  scrape_interval: 1s
  scrape_timeout: 1s
  file_sd_configs:
  - files: ["{output}"]
    refresh_interval: 1s
- job_name: kuma-control-plane
  static_configs:
  - targets: ["127.0.0.1:{cp.ports["KUMA_XDS_SERVER_DIAGNOSTICS_PORT"]}"]
"""
    with PrometheusServer(binary, tmp_path, config) as prom:
        try:
            targets = wait_until(
                lambda: all_up(prom, {"web-1", "backend-1"}), 45, "both Envoys up in Prometheus"
            )
            labels = targets["web-1"]["labels"]
            assert labels == {
                "job": "web",
                "instance": "web-1",
                "mesh": "default",
                "dataplane": "web-1",
                "service": "web",
                "services": ",web,",
                "version": "v1",
                "versions": ",v1,",
            }
            assert targets["web-1"]["scrapeUrl"] == f"http://127.0.0.1:{web.metrics_port}/metrics"
            assert targets["backend-1"]["labels"]["env"] == "test"
            # the Dataplane's own path wins over the Mesh's
            assert (
                targets["backend-1"]["scrapeUrl"]
                == f"http://127.0.0.1:{backend.metrics_port}/stats"
            )
            # Envoy's own metrics, scraped, carry Kuma's labels
            series = wait_until(
                lambda: prom.api('query?query=envoy_server_live{mesh="default"}')["result"],
                15,
                "Envoy's metrics in Prometheus",
            )
            assert {s["metric"]["dataplane"] for s in series} == {"web-1", "backend-1"}
            control_plane_metrics(prom)

            Sidecar(cp, "web-2", {"service": "web", "version": "v2"})
            targets = wait_until(
                lambda: all_up(prom, {"web-1", "web-2", "backend-1"}),
                CHANGE_TIMEOUT,
                "the new Dataplane up in Prometheus",
            )
            assert targets["web-2"]["labels"]["version"] == "v2"

            deleted = cp.http.delete(f"{cp.api}/meshes/default/dataplanes/backend-1", timeout=10)
            assert deleted.status_code == 200, deleted.text
            wait_until(
                lambda: set(by_dataplane(prom)) == {"web-1", "web-2"},
                CHANGE_TIMEOUT,
                "the deleted Dataplane gone from Prometheus",
            )
        except BaseException:
            print("--- prometheus\n" + prom.logs())
            print("--- file_sd\n" + (output.read_text() if output.exists() else "(none)"))
            raise
    sd_log = procs.log("kuma-prometheus-sd")
    assert "NOT verified" not in sd_log  # the CA was used
    assert "terminated with an error" not in sd_log, sd_log
