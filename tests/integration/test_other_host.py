"""Another host on one machine (issue 15): a kuma-dp + Envoy in a network namespace of its own,
joined to this host by a veth pair, against `kuma-cp run` here. The control plane advertises the
veth's host address (bootstrap on HTTPS and xDS on TLS there, its certificate naming it); the
namespaced dataplane has a dataplane token and verifies the server with `--ca-cert-file`. Real
traffic crosses between it and a dataplane on this host, both ways, over mutual TLS; and
same-host trust (on, the default) never stands in for the token over there."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns import Netns, network_namespace
from tests.ports import free_port
from tests.security.harness import (
    BIN,
    ROOT,
    ControlPlane,
    Dataplane,
    Processes,
    clean_env,
    http_get,
    mtls_mesh,
)
from tests.xds_ads.harness import Backend

pytestmark = pytest.mark.envoy

# The namespace's workload: an HTTP server on its loopback answering every GET with its name.
SERVE = """
import http.server, sys
body = sys.argv[2].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@dataclass
class TwoHosts:
    procs: Processes
    ns: Netns
    cp: ControlPlane
    remote: Dataplane  # ns-1, service ns-web, in the namespace
    local: Dataplane  # host-1, service host-web, on this host
    to_remote: int  # host-1's outbound port to ns-web (on this host's loopback)
    to_local: int  # ns-1's outbound port to host-web (on the namespace's loopback)

    @property
    def bootstrap_url(self) -> str:
        return f"https://{self.ns.host_ip}:{self.cp.bootstrap_port}"


@pytest.fixture()
def two_hosts(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TwoHosts]:
    with network_namespace() as ns:
        procs = Processes(tmp_path)
        try:
            cp = ControlPlane(
                procs,
                KUMA_GENERAL_ADVERTISED_HOSTNAME=ns.host_ip,
                KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST=ns.host_ip,
                KUMA_GENERAL_TLS_SERVER_NAMES=ns.host_ip,
            )
            cp.start()
            mtls_mesh(cp, [("host-web", "ns-web"), ("ns-web", "host-web")])
            remote_port, local_workload = free_port(), Backend("host-1")
            procs.start(
                "ns-workload",
                [sys.executable, "-c", SERVE, str(remote_port), "ns-1"],
                clean_env(),
                ns,
            )
            to_remote, to_local = free_port(), free_port()
            remote = Dataplane(
                cp,
                "ns-1",
                f"{ns.ns_ip}:{free_port()}:{remote_port}",
                "ns-web",
                [(to_local, "host-web")],
                netns=ns,
            )
            local = Dataplane(
                cp,
                "host-1",
                f"{ns.host_ip}:{free_port()}:{local_workload.port}",
                "host-web",
                [(to_remote, "ns-web")],
            )
            yield TwoHosts(procs, ns, cp, remote, local, to_remote, to_local)
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                print(procs.logs())
            procs.stop_all()


def python_in(ns: Netns, script: str, *args: str) -> str:
    """`script` run by this Python inside `ns`: its output (it must succeed)."""
    result = ns.run([sys.executable, "-c", script, *args], env=clean_env(), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_dataplane_on_another_host_joins_with_its_token(two_hosts: TwoHosts) -> None:
    hosts, ns, cp = two_hosts, two_hosts.ns, two_hosts.cp
    # From the namespace, the control plane is the veth's host address, with its one certificate.
    assert python_in(ns, CERTIFICATE, ns.host_ip, str(cp.bootstrap_port)).strip() == cp.ca.strip()

    # Without its token, the same kuma-dp over there is refused: the bootstrap server sees the
    # namespace's address, not this host's, whatever same-host trust allows here (a kuma-dp
    # that got a bootstrap would run Envoy and not exit).
    argv = [str(BIN / "kuma-dp"), "run", "--name", "ns-1", "--bootstrap-server-url"]
    argv += [hosts.bootstrap_url, "--ca-cert-file", str(cp.ca_file), "--admin-port", "9901"]
    no_token = ns.run(argv, env=clean_env(), timeout=30)
    assert no_token.returncode != 0, no_token.stderr
    assert "dataplane token is missing" in no_token.stderr, no_token.stderr
    # ... and the token itself, sent in plaintext to the same port, is refused unread.
    body = json.dumps({"mesh": "default", "name": "ns-1", "dataplaneToken": cp.token("ns-1")})
    plain = python_in(ns, POST, f"http://{ns.host_ip}:{cp.bootstrap_port}/bootstrap", body)
    assert plain.startswith("403"), plain

    hosts.remote.start(bootstrap_url=hosts.bootstrap_url)
    hosts.local.start(bootstrap_url=hosts.bootstrap_url)
    hosts.remote.wait_ready(45)
    hosts.local.wait_ready(45)

    # Real traffic, both ways, through both Envoys over mutual TLS.
    cp.wait_until(
        lambda: http_get(f"http://127.0.0.1:{hosts.to_remote}/") == "ns-1",
        30,
        "this host -> the namespace's workload through both Envoys",
    )
    cp.wait_until(
        lambda: http_get(f"http://127.0.0.1:{hosts.to_local}/", netns=ns) == "host-1",
        30,
        "the namespace -> this host's workload through both Envoys",
    )

    # The namespaced Envoy dials the advertised address, verifies the server with the CA it
    # was given, and presents its token from a file; the token is not in its config dump.
    dump = hosts.remote.admin("/config_dump")
    bootstrap = next(c["bootstrap"] for c in json.loads(dump)["configs"] if "bootstrap" in c)
    google = bootstrap["dynamic_resources"]["ads_config"]["grpc_services"][0]["google_grpc"]
    assert google["target_uri"] == f"{ns.host_ip}:{cp.xds_port}"
    roots = google["channel_credentials"]["ssl_credentials"]["root_certs"]["inline_string"]
    assert roots.strip() == cp.ca.strip()
    assert google["call_credentials"], google
    assert hosts.remote.token_file.read_text().strip() not in dump
    # Its ADS stream was bound by that token: a stream with none is refused over there.
    spec = {
        "address": f"{ns.host_ip}:{cp.xds_port}",
        "ca": cp.ca,
        "calls": [{"node": "default.ns-1"}],
    }
    attacker = ns.run(
        [sys.executable, "-m", "tests.security.attacker", json.dumps(spec)],
        env=clean_env(),
        cwd=ROOT,
    )
    outcome = json.loads(attacker.stdout)
    assert (outcome["code"], outcome["responses"]) == ("UNAUTHENTICATED", []), attacker


CERTIFICATE = """
import ssl, sys
print(ssl.get_server_certificate((sys.argv[1], int(sys.argv[2])), timeout=5))
"""

# A POST: "STATUS BODY", whatever the status.
POST = """
import sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST")
try:
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code, exc.read().decode())
"""
