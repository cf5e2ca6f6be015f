"""Port 5682's transport, against the real servers: `kuma-bootstrap` (gunicorn, the dual-protocol
worker) and `kuma-cp run` (cheroot). HTTPS verifies with the control plane's CA, plain HTTP is
answered to this host, and refused (403, "use https://") to another host: a network namespace on
a veth pair that the test makes and removes."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from kuma.server_tls import self_signed
from tests.kuma_dp.harness import clean_env
from tests.netns import Netns, network_namespace, unavailable
from tests.ports import cp_ports, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
BODY = {"mesh": "default", "name": "nobody"}
# Past the transport, a caller on this host needs no token (general.trustLoopback) and learns
# that the Dataplane does not exist; another host has no token and is refused for that.
PASSED_ON_THIS_HOST = 404
PASSED_FROM_ELSEWHERE = 401

# Run inside the namespace: one request each way, answered as JSON on stdout.
REMOTE_CLIENT = """
import json, sys, requests
host, port, ca = sys.argv[1:4]
session = requests.Session()
session.trust_env = False  # no proxy from the environment
body = {"mesh": "default", "name": "nobody"}
out = {}
for scheme in ("http", "https"):
    r = session.post(f"{scheme}://{host}:{port}/bootstrap", json=body, verify=ca, timeout=10)
    out[scheme] = [r.status_code, r.json()]
print(json.dumps(out))
"""


@dataclass
class Served:
    kind: str
    port: int
    ca: str  # the CA file that verifies the server's certificate
    remote: Netns | None


@pytest.fixture(scope="module")
def namespace() -> Iterator[Netns | None]:
    if unavailable():
        yield None  # the tests from another host skip, saying why
        return
    with network_namespace() as ns:
        yield ns


def _serving(port: int) -> bool:
    try:
        return requests.post(f"http://127.0.0.1:{port}/bootstrap", data=b"x", timeout=1).ok is False
    except (requests.ConnectionError, requests.Timeout):
        return False


@pytest.fixture(scope="module", params=["kuma-bootstrap", "kuma-cp run"])
def served(
    request: pytest.FixtureRequest,
    namespace: Netns | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("transport")
    names = ["localhost", "127.0.0.1"] + ([namespace.host_ip] if namespace else [])
    cert = self_signed(names)
    (tmp / "tls.crt").write_bytes(cert.cert_pem)
    (tmp / "tls.key").write_bytes(cert.key_pem)
    port = free_port()
    env = clean_env(
        HOME=str(tmp),
        KUMA_GENERAL_TLS_CERT_FILE=str(tmp / "tls.crt"),
        KUMA_GENERAL_TLS_KEY_FILE=str(tmp / "tls.key"),
        KUMA_BOOTSTRAP_WORKERS="1",
    )
    if request.param == "kuma-cp run":
        env.update(cp_ports())
        argv = [str(BIN / "kuma-cp"), "run"]
    else:
        argv = [str(BIN / "kuma-bootstrap")]
    env["KUMA_BOOTSTRAP_SERVER_PORT"] = str(port)
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is None and _serving(port), 30, f"{request.param} to serve")
        yield Served(request.param, port, str(tmp / "tls.crt"), namespace)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def _post(url: str, **kwargs: Any) -> requests.Response:
    return requests.post(f"{url}/bootstrap", json=BODY, timeout=10, **kwargs)


def test_https_verifies_with_the_control_planes_ca(served: Served):
    for host in ("localhost", "127.0.0.1"):
        response = _post(f"https://{host}:{served.port}", verify=served.ca)
        assert response.status_code == PASSED_ON_THIS_HOST, response.text


def test_plain_http_from_this_host_is_answered(served: Served):
    response = _post(f"http://127.0.0.1:{served.port}")
    assert response.status_code == PASSED_ON_THIS_HOST, response.text
    assert "not found" in response.json()["details"]


def test_a_client_without_the_ca_still_gets_tls(served: Served):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
        context.wrap_socket(raw) as conn,
    ):
        assert conn.version() in ("TLSv1.2", "TLSv1.3")
        body = json.dumps(BODY).encode()
        conn.sendall(
            b"POST /bootstrap HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(f"HTTP/1.1 {PASSED_ON_THIS_HOST} ".encode()), answer[:200]


def test_a_wrong_ca_fails(served: Served, tmp_path: Path):
    other = tmp_path / "other-ca.pem"
    other.write_bytes(self_signed(["localhost", "127.0.0.1"]).cert_pem)
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        _post(f"https://localhost:{served.port}", verify=str(other))


def test_a_silent_connection_does_not_hold_up_others(served: Served):
    # More silent connections than the server has threads, and one stuck inside a handshake.
    silent = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(12)]
    stuck = socket.create_connection(("127.0.0.1", served.port))
    stuck.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
    try:
        for _ in range(3):
            response = _post(f"https://localhost:{served.port}", verify=served.ca)
            assert response.status_code == PASSED_ON_THIS_HOST
            assert response.elapsed.total_seconds() < 2
    finally:
        for sock in [*silent, stuck]:
            sock.close()


def test_another_host_gets_https_and_is_refused_plain_http(served: Served):
    if served.remote is None:
        pytest.skip(f"no network namespace: {unavailable()}")
    ns = served.remote
    result = ns.run(
        [sys.executable, "-c", REMOTE_CLIENT, ns.host_ip, str(served.port), served.ca],
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    status, error = out["http"]
    assert status == 403, error
    assert error["title"] == "HTTPS required"
    assert f"https://{ns.host_ip}:{served.port}/bootstrap" in error["details"]
    status, error = out["https"]
    assert status == PASSED_FROM_ELSEWHERE, error  # over TLS it is the token that counts
