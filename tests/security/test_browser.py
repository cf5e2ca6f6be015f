"""No cross-site writes (issue 16, point 1): what a browser on the control plane's host can make
the API do. The API is the in-process app of `kuma-cp run`, with its defaults (same-host trust
on, the default CORS), served over real HTTP on 127.0.0.1; each request below is sent with
exactly the headers a browser sends (http.client adds none of its own), so the peer is loopback,
as for a browser on this host.

Refused, and nothing written (the whole store is compared before and after): a `text/plain`
(or form) POST /tokens from a foreign page, a PUT from a foreign page, a DELETE through a
DNS-rebound name, and the CORS preflights a foreign page would need. Still working: kumactl on
this host without a token (Host localhost / 127.0.0.1, no Origin), the GUI on this host, and
remote-style callers with the admin token."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from cli.kumactl.client import ApiClient
from kuma import tokens
from kuma.config import load_config
from kuma.edge.wsgi_server import ThreadedWsgiServer
from kuma.netutil import host_name, is_local_name
from kuma.resources.registry import TYPES
from kuma.wiring import Core, ensure_default_mesh, open_core
from services.api.app import create_app

ADMIN_TOKEN = "browser-test-admin-token"
EVIL = "https://evil.example"
REMOTE_GUI = "https://gui.example.com"
ALLOW_ALL = {
    "type": "TrafficPermission",
    "mesh": "default",
    "name": "allow-all",
    "sources": [{"match": {"service": "*"}}],
    "destinations": [{"match": {"service": "*"}}],
}
TOKEN_REQUEST = {"mesh": "default", "name": "web-1"}

# What Chrome sends besides the request's own headers (Host, Origin, Content-Type, Sec-Fetch-*).
CHROME = [
    ("Connection", "keep-alive"),
    ("sec-ch-ua", '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Linux"'),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
    ),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "en-US,en;q=0.9"),
]


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Served:
    core: Core
    port: int

    @property
    def host(self) -> str:
        """The Host header of a request to this API through 127.0.0.1."""
        return f"127.0.0.1:{self.port}"

    def send(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> Answer:
        """One request with exactly `headers` (plus Content-Length when there is a body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if body or method in ("POST", "PUT"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            conn.close()

    def snapshot(self) -> tuple[int, list[tuple[str, str, str, str]]]:
        """The store's revision and every resource in it (Secrets and the reserved mesh too)."""
        store = self.core.store
        items = [
            (r.type, r.mesh, r.name, str(r.version))
            for rtype in TYPES
            for r in store.list(rtype.name).items
        ]
        return store.revision(), sorted(items)


@contextmanager
def _serve(env: dict[str, str]) -> Iterator[Served]:
    cfg = load_config(env={"KUMA_API_SERVER_ADMIN_TOKEN": ADMIN_TOKEN, **env})
    core = open_core(cfg, name="kuma-browser-test")
    ensure_default_mesh(cfg, core.manager)
    server = ThreadedWsgiServer(create_app(cfg, core), "127.0.0.1", 0, name="browser-test")
    server.start()
    try:
        yield Served(core, server.port)
    finally:
        server.stop()
        core.close()


@pytest.fixture(scope="module")
def api() -> Iterator[Served]:
    """`kuma-cp run`'s defaults: same-host trust on, the default CORS."""
    with _serve({}) as served:
        yield served


@pytest.fixture(scope="module")
def remote_gui_api() -> Iterator[Served]:
    """The operator also allows a GUI hosted elsewhere."""
    allowed = r"http://localhost:5683,https://gui\.example\.com"
    with _serve({"KUMA_API_SERVER_CORS_ALLOWED_DOMAINS": allowed}) as served:
        yield served


@pytest.fixture()
def populated(api: Served) -> Served:
    """Mesh default with a TrafficPermission (something a DELETE of the mesh would take)."""
    permission = {**ALLOW_ALL, "name": "web-to-backend"}
    path = "/meshes/default/traffic-permissions/web-to-backend"
    r = api.send("PUT", path, _kumactl(api), _json(permission))
    assert r.status in (200, 201), r.body
    return api


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _kumactl(api: Served, host: str | None = None) -> list[tuple[str, str]]:
    """What kumactl (python-requests) sends for a write with a JSON body."""
    return [
        ("Host", host or api.host),
        ("User-Agent", "python-requests/2.32.3"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Accept", "application/json"),
        ("Connection", "keep-alive"),
        ("Content-Type", "application/json"),
    ]


def _cross_site(api: Served, origin: str = EVIL, *, mode: str = "cors") -> list[tuple[str, str]]:
    return [
        ("Host", api.host),
        *CHROME,
        ("Origin", origin),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Mode", mode),
        ("Sec-Fetch-Dest", "empty"),
        ("Referer", origin + "/"),
    ]


def _refused(answer: Answer, status: int = 401) -> None:
    assert answer.status == status, answer.body
    assert set(answer.json()) == {"title", "details"}
    assert "Access-Control-Allow-Origin" not in answer.headers


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        ("text/plain;charset=UTF-8", "no-cors"),  # fetch(url, {method: "POST", body: "..."})
        ("application/x-www-form-urlencoded", "navigate"),  # an auto-submitted <form>
        ("multipart/form-data; boundary=----WebKitFormBoundaryx7Yz", "no-cors"),
    ],
)
def test_a_simple_post_tokens_from_a_foreign_page_mints_nothing(
    populated: Served, content_type: str, mode: str
):
    before = populated.snapshot()
    headers = [*_cross_site(populated, mode=mode), ("Content-Type", content_type)]
    answer = populated.send("POST", "/tokens", headers, _json(TOKEN_REQUEST))
    _refused(answer)
    assert b"eyJ" not in answer.body  # no JWT
    assert populated.snapshot() == before


def test_a_put_from_a_foreign_page_writes_nothing(populated: Served):
    before = populated.snapshot()
    headers = [*_cross_site(populated), ("Content-Type", "application/json")]
    path = "/meshes/default/traffic-permissions/allow-all"
    _refused(populated.send("PUT", path, headers, _json(ALLOW_ALL)))
    assert populated.snapshot() == before
    assert populated.send("GET", path, [("Host", populated.host)]).status == 404


@pytest.mark.parametrize("origin", [True, False], ids=["same-origin", "no-origin"])
def test_a_delete_through_a_rebound_name_deletes_nothing(populated: Served, origin: bool):
    """http://evil.example:PORT resolved first to the attacker, then to 127.0.0.1: the page's
    fetch is same-origin to the browser, and it sends the attacker's name as Host."""
    rebound = f"evil.example:{populated.port}"
    headers = [("Host", rebound), *CHROME, ("Sec-Fetch-Site", "same-origin")]
    if origin:
        headers += [("Origin", f"http://{rebound}"), ("Referer", f"http://{rebound}/")]
    before = populated.snapshot()
    _refused(populated.send("DELETE", "/meshes/default", headers))
    assert populated.snapshot() == before
    path = "/meshes/default/traffic-permissions/web-to-backend"
    assert populated.send("GET", path, [("Host", populated.host)]).status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/tokens"), ("PUT", "/meshes/default"), ("DELETE", "/meshes/default")],
)
def test_a_foreign_preflight_gets_no_grant(populated: Served, method: str, path: str):
    headers = [
        ("Host", populated.host),
        ("Connection", "keep-alive"),
        ("Accept", "*/*"),
        ("Access-Control-Request-Method", method),
        ("Access-Control-Request-Headers", "content-type"),
        ("Origin", EVIL),
        ("User-Agent", dict(CHROME)["User-Agent"]),
        ("Sec-Fetch-Mode", "cors"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Dest", "empty"),
        ("Referer", EVIL + "/"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Accept-Language", "en-US,en;q=0.9"),
    ]
    before = populated.snapshot()
    answer = populated.send("OPTIONS", path, headers)
    _refused(answer, 403)
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    assert populated.snapshot() == before


def test_a_foreign_page_cannot_read_the_api(populated: Served):
    """A page may send a GET (it changes nothing) but gets no grant to read the answer."""
    answer = populated.send("GET", "/meshes", [*_cross_site(populated)])
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


@pytest.mark.parametrize("origin", ["null", "http://localhost:8080", EVIL])
def test_other_origins_on_a_local_host_are_not_same_host(populated: Served, origin: str):
    """`null` (a sandboxed frame, a file), and a page of this host not allowed by CORS."""
    headers = [*_cross_site(populated, origin), ("Content-Type", "application/json")]
    before = populated.snapshot()
    mesh = _json({"type": "Mesh", "name": "default", "mtls": {"enabled": True}})
    _refused(populated.send("PUT", "/meshes/default", headers, mesh))
    assert populated.snapshot() == before


def test_an_allowed_remote_origin_still_needs_the_admin_token(remote_gui_api: Served):
    api = remote_gui_api
    headers = [*_cross_site(api, REMOTE_GUI), ("Content-Type", "application/json")]
    before = api.snapshot()
    answer = api.send("POST", "/tokens", headers, _json(TOKEN_REQUEST))
    assert answer.status == 401
    assert answer.headers["Access-Control-Allow-Origin"] == REMOTE_GUI  # it may read the refusal
    assert api.snapshot() == before
    with_token = [*headers, ("Authorization", f"Bearer {ADMIN_TOKEN}")]
    answer = api.send("POST", "/tokens", with_token, _json(TOKEN_REQUEST))
    assert answer.status == 200
    tokens.verify(api.core.store, answer.body.decode(), "default", "web-1")


def test_a_write_that_is_not_json_is_415_even_from_kumactls_place(api: Served):
    """Same-host trust applies (no Origin, Host 127.0.0.1), yet a body not declared JSON is
    refused: no write can be a simple request."""
    headers = [h for h in _kumactl(api) if h[0] != "Content-Type"]
    before = api.snapshot()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        sent = headers + ([("Content-Type", content_type)] if content_type else [])
        answer = api.send("POST", "/tokens", sent, _json(TOKEN_REQUEST))
        assert answer.status == 415, answer.body
        assert answer.json() == {
            "title": "Unsupported Media Type",
            "details": "writes must be sent as `Content-Type: application/json`",
        }
    assert api.snapshot() == before


# --- still working ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_kumactl_on_this_host_writes_without_a_token(api: Served, host: str):
    client = ApiClient(f"http://{host}:{api.port}")  # the API listens on 127.0.0.1 only
    name = f"kumactl-{host.replace('.', '-')}"
    client.put_json(f"/meshes/default/traffic-permissions/{name}", {**ALLOW_ALL, "name": name})
    token = client.call("POST", "/tokens", json=TOKEN_REQUEST).text
    tokens.verify(api.core.store, token, "default", "web-1")
    client.delete(f"/meshes/default/traffic-permissions/{name}")
    assert client.request("GET", f"/meshes/default/traffic-permissions/{name}").status_code == 404


def test_the_gui_on_this_host_may_write(api: Served):
    gui = "http://localhost:5683"
    host = f"localhost:{api.port}"
    preflight = api.send(
        "OPTIONS",
        "/meshes/default/traffic-permissions/gui",
        [
            ("Host", host),
            ("Origin", gui),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    )
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == gui
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    headers = [
        ("Host", host),
        *CHROME,
        ("Origin", gui),
        ("Sec-Fetch-Site", "same-site"),
        ("Sec-Fetch-Mode", "cors"),
        ("Content-Type", "application/json"),
    ]
    body = _json({**ALLOW_ALL, "name": "gui"})
    answer = api.send("PUT", "/meshes/default/traffic-permissions/gui", headers, body)
    assert answer.status in (200, 201), answer.body
    assert answer.headers["Access-Control-Allow-Origin"] == gui


@pytest.mark.parametrize(
    "host", ["cp.example.com:5681", "evil.example"], ids=["remote-name", "rebound-name"]
)
def test_remote_style_writes_with_the_admin_token(api: Served, host: str):
    headers = [*_kumactl(api, host), ("Authorization", f"Bearer {ADMIN_TOKEN}")]
    path = "/meshes/default/traffic-permissions/remote"
    body = _json({**ALLOW_ALL, "name": "remote"})
    assert api.send("PUT", path, headers, body).status in (200, 201)
    answer = api.send("POST", "/tokens", headers, _json(TOKEN_REQUEST))
    assert answer.status == 200
    tokens.verify(api.core.store, answer.body.decode(), "default", "web-1")
    assert api.send("DELETE", path, headers).status == 200
    without = [h for h in headers if h[0] != "Authorization"]
    before = api.snapshot()
    _refused(api.send("PUT", path, without, body))
    wrong = [*without, ("Authorization", "Bearer not-the-token")]
    _refused(api.send("PUT", path, wrong, body))
    assert api.snapshot() == before


def test_configured_names_of_this_host_are_same_host():
    """`general.localHostnames` (and `advertisedHostname`) name this host too."""
    env = {"KUMA_GENERAL_LOCAL_HOSTNAMES": "cp.internal", "KUMA_GENERAL_ADVERTISED_HOSTNAME": "cp"}
    with _serve(env) as api:
        for host in (f"cp.internal:{api.port}", f"CP:{api.port}"):
            answer = api.send("POST", "/tokens", _kumactl(api, host), _json(TOKEN_REQUEST))
            assert answer.status == 200, answer.body
        _refused(api.send("POST", "/tokens", _kumactl(api, "cp.example"), _json(TOKEN_REQUEST)))


def test_a_presented_token_is_checked_even_from_this_host(api: Served):
    headers = [*_kumactl(api), ("Authorization", "Bearer not-the-token")]
    before = api.snapshot()
    _refused(api.send("POST", "/tokens", headers, _json(TOKEN_REQUEST)))
    assert api.snapshot() == before


# --- what names this host ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost:5681", True),
        ("LOCALHOST.", True),
        ("127.0.0.1:5681", True),
        ("127.1.2.3", True),
        ("[::1]:5681", True),
        ("[::ffff:127.0.0.1]:5681", True),
        ("cp.internal:5681", True),  # configured
        ("evil.example", False),
        ("localhost.evil.example:5681", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0:5681", False),
        ("[::1", False),
        ("", False),
    ],
)
def test_local_names(host: str, local: bool):
    assert is_local_name(host_name(host), ["cp.internal"]) is local
