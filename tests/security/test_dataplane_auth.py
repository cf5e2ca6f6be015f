"""Who may act as a Dataplane (spec §9.2): dataplane tokens in universal mode, and Kubernetes
service-account tokens confirmed by a TokenReview. No Kubernetes API server can run here: the
TokenReview endpoint is a small HTTPS server speaking its wire format (request checked, answer
shaped as the API server's)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kuma import tokens
from kuma.dataplane_auth import (
    DataplaneAuthenticator,
    KubernetesTokenReviewer,
    check_service_account,
)
from kuma.errors import StoreUnavailableError, UnauthorizedError
from kuma.netutil import free_port
from kuma.server_tls import self_signed
from kuma.store.memory import MemoryStore

CONTROL_PLANE_CREDENTIAL = "control-plane-sa-token"
POD_TOKENS = {"pod-token-shop": "system:serviceaccount:shop:default", "user-token": "jane"}


@pytest.mark.parametrize(
    ("username", "dataplane", "problem"),
    [
        ("system:serviceaccount:shop:default", "web-1.shop", None),
        ("system:serviceaccount:shop:payments", "web-7f9c.shop", None),
        ("system:serviceaccount:other:default", "web-1.shop", "belongs to namespace other"),
        ("system:serviceaccount:shop", "web-1.shop", "is not a service account"),
        ("jane", "web-1.shop", "is not a service account"),
        ("system:serviceaccount:shop:default", "web-1", "Dataplane web-1 to namespace web-1"),
    ],
)
def test_service_account_must_be_of_the_dataplanes_namespace(username, dataplane, problem):
    if problem is None:
        check_service_account(username, dataplane)
    else:
        with pytest.raises(UnauthorizedError, match=problem):
            check_service_account(username, dataplane)


def test_universal_tokens_name_the_dataplane():
    store = MemoryStore()
    tokens.ensure_signing_key(store)
    own = tokens.issue(store, "default", "web-1")
    auth = DataplaneAuthenticator(store, enabled=True, trust_loopback=True)
    auth.check("default", "web-1", own)
    with pytest.raises(UnauthorizedError, match="different than in token"):
        auth.check("default", "web-2", own)
    auth.check("default", "web-1", "", local=True)  # same host, no token: trusted
    with pytest.raises(UnauthorizedError):
        auth.check("default", "web-1", "", local=False)
    with pytest.raises(UnauthorizedError):  # a presented token is checked, even locally
        auth.check("default", "web-2", own, local=True)
    DataplaneAuthenticator(store, enabled=False).check("default", "web-2", "")


@pytest.fixture()
def api_server(tmp_path: Path) -> Iterator[tuple[KubernetesTokenReviewer, list[dict]]]:
    pair = self_signed(["127.0.0.1"])
    (tmp_path / "ca.crt").write_bytes(pair.cert_pem)
    (tmp_path / "tls.key").write_bytes(pair.key_pem)
    (tmp_path / "token").write_text(CONTROL_PLANE_CREDENTIAL + "\n")
    reviews: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reviews.append(body)
            if self.headers["Authorization"] != f"Bearer {CONTROL_PLANE_CREDENTIAL}":
                self._answer(401, {"kind": "Status", "status": "Failure", "code": 401})
                return
            assert self.path == "/apis/authentication.k8s.io/v1/tokenreviews"
            user = POD_TOKENS.get(body["spec"]["token"])
            status: dict = {"authenticated": user is not None}
            if user is None:
                status["error"] = "[invalid bearer token, service account token is invalid]"
            else:
                status["user"] = {"username": user, "uid": "u-1", "groups": []}
            self._answer(201, {**body, "status": status})

        def _answer(self, code: int, doc: dict) -> None:
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "ca.crt", tmp_path / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reviewer = KubernetesTokenReviewer(
        f"https://127.0.0.1:{server.server_address[1]}",
        str(tmp_path / "ca.crt"),
        str(tmp_path / "token"),
    )
    yield reviewer, reviews
    server.shutdown()
    server.server_close()


def test_kubernetes_service_account_tokens_are_reviewed(api_server):
    reviewer, reviews = api_server
    auth = DataplaneAuthenticator(MemoryStore(), enabled=True, reviewer=reviewer)
    auth.check("default", "web-1.shop", "pod-token-shop")
    assert reviews[-1]["kind"] == "TokenReview"
    assert reviews[-1]["apiVersion"] == "authentication.k8s.io/v1"
    assert reviews[-1]["spec"] == {"token": "pod-token-shop"}

    with pytest.raises(UnauthorizedError, match="namespace shop, Dataplane web-1.other"):
        auth.check("default", "web-1.other", "pod-token-shop")
    with pytest.raises(UnauthorizedError, match="service account token is invalid"):
        auth.check("default", "web-1.shop", "forged")
    with pytest.raises(UnauthorizedError, match="not a service account"):
        auth.check("default", "web-1.shop", "user-token")
    asked = len(reviews)
    with pytest.raises(UnauthorizedError, match="k8s token is missing"):
        auth.check("default", "web-1.shop", "")
    assert len(reviews) == asked  # nothing to review


def test_an_unreachable_kubernetes_api_is_unavailability_not_a_verdict(tmp_path: Path):
    (tmp_path / "ca.crt").write_bytes(self_signed(["127.0.0.1"]).cert_pem)
    (tmp_path / "token").write_text(CONTROL_PLANE_CREDENTIAL)
    reviewer = KubernetesTokenReviewer(
        f"https://127.0.0.1:{free_port()}", str(tmp_path / "ca.crt"), str(tmp_path / "token"), 1.0
    )
    with pytest.raises(StoreUnavailableError, match="TokenReview at"):
        reviewer.review("pod-token-shop")
    missing = KubernetesTokenReviewer("https://127.0.0.1:1", str(tmp_path / "nope"), "nope")
    with pytest.raises(StoreUnavailableError, match="Kubernetes credentials"):
        missing.review("pod-token-shop")
