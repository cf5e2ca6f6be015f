"""kuma-dp's client side of TLS (cli/kuma_dp/control_plane.py) against a real HTTPS server: the
dual-protocol server `kuma-cp run` serves the bootstrap with, in front of a small app that
answers the catalog and echoes how each request arrived."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.kuma_dp import control_plane
from cli.kuma_dp.control_plane import discover, fetch_bootstrap
from cli.kuma_dp.errors import DpError
from kuma.edge.wsgi_server import DualProtocolWsgiServer
from kuma.server_tls import self_signed


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/catalog":
        host = environ["HTTP_HOST"]
        body = {"apis": {"bootstrap": {"url": f"https://{host}"}, "dataplaneToken": {}}}
    else:
        body = {"scheme": environ["wsgi.url_scheme"], "method": environ["REQUEST_METHOD"]}
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The server's certificate (for localhost only, so 127.0.0.1 is a host name mismatch) and
    a CA file that did not sign it."""
    tmp = tmp_path_factory.mktemp("pki")
    cert = self_signed(["localhost"])
    (tmp / "ca.pem").write_bytes(cert.cert_pem)
    (tmp / "other.pem").write_bytes(self_signed(["localhost"]).cert_pem)
    return {"cert": cert, "ca": str(tmp / "ca.pem"), "other": str(tmp / "other.pem")}


@pytest.fixture(scope="module")
def server(pki: dict[str, Any]) -> Iterator[DualProtocolWsgiServer]:
    srv = DualProtocolWsgiServer(_app, "127.0.0.1", 0, pki["cert"], name="tls-client-test")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def fresh_contexts() -> Iterator[None]:
    # contexts are cached per CA file for the process: each test sees its own first warning
    control_plane.tls_context.cache_clear()
    yield
    control_plane.tls_context.cache_clear()


def test_https_is_verified_against_the_ca_file(server, pki):
    found = discover(f"https://localhost:{server.port}", pki["ca"])
    assert found.bootstrap_url == f"https://localhost:{server.port}"
    answer = json.loads(fetch_bootstrap(found.bootstrap_url, {"mesh": "default"}, pki["ca"]))
    assert answer == {"scheme": "https", "method": "POST"}


def test_a_ca_that_did_not_sign_the_certificate_is_refused_by_name(server, pki):
    with pytest.raises(DpError) as err:
        fetch_bootstrap(f"https://localhost:{server.port}", {}, pki["other"])
    message = str(err.value)
    assert "certificate verify failed" in message
    assert pki["other"] in message


def test_the_host_name_is_checked(server, pki):
    with pytest.raises(DpError) as err:
        discover(f"https://127.0.0.1:{server.port}", pki["ca"])
    message = str(err.value)
    assert "certificate verify failed" in message and pki["ca"] in message
    assert "mismatch" in message  # "IP address mismatch, certificate is not valid for ..."


def test_without_a_ca_file_it_still_encrypts_and_warns_once(server, caplog):
    caplog.set_level(logging.WARNING, logger="kuma-dp")
    url = f"https://127.0.0.1:{server.port}"
    for _ in range(2):
        assert json.loads(fetch_bootstrap(url, {}))["scheme"] == "https"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "NOT verified" in warnings[0] and "--ca-cert-file" in warnings[0]


def test_http_urls_stay_plain_http(server, pki, caplog):
    caplog.set_level(logging.WARNING, logger="kuma-dp")
    answer = json.loads(fetch_bootstrap(f"http://127.0.0.1:{server.port}", {}, pki["ca"]))
    assert answer["scheme"] == "http"
    assert not caplog.records


def test_an_unreadable_ca_file_is_named(server, tmp_path: Path):
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(DpError, match="could not load the CA certificate file .*nope.pem"):
        fetch_bootstrap(f"https://localhost:{server.port}", {}, missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(DpError, match="could not load the CA certificate file"):
        fetch_bootstrap(f"https://localhost:{server.port}", {}, str(garbage))


def test_https_to_a_plain_http_server_says_so(pki):
    # A plain HTTP server answers a ClientHello with an HTTP error, as gunicorn or nginx do.
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def answer_once() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer_once, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        with pytest.raises(DpError, match="does it serve https on that port"):
            fetch_bootstrap(f"https://127.0.0.1:{port}", {}, pki["ca"])
        thread.join(5)
