"""The provided-CA API (spec §5.2) on the API's port: Kuma's bodies and messages, the admin
credential, and the rule that a CA private key crosses hosts only over TLS."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from kuma import provided_ca
from kuma.errors import NotFoundError
from services.api.app import create_app
from tests.api.conftest import Api, Serve
from tests.ca_certs import make_ca
from tests.netns import non_loopback_address

NO_SIGNING_CERT = (
    "There is no signing certificate in provided CA for a given mesh. Add certificate via "
    "'kumactl manage ca provided certificates add' command."
)


@pytest.fixture()
def mesh(api: Api) -> Iterator[str]:
    """A mesh name of this test only (its provided CA may outlive no Mesh)."""
    name = f"m-{uuid.uuid4().hex[:8]}"
    yield name
    with contextlib.suppress(NotFoundError):  # already gone, or deleted with its Mesh
        provided_ca.delete_ca(api.core.store, name)


def _certs(api: Api, mesh: str) -> str:
    return f"{api.url}/meshes/{mesh}/ca/provided/certificates"


def _add(api: Api, mesh: str, body: object, **kwargs):
    return api.http.post(_certs(api, mesh), json=body, **kwargs)


def _pair(**kwargs: object) -> dict[str, str]:
    cert, key = make_ca(**kwargs)  # type: ignore[arg-type]
    return {"cert": cert.decode(), "key": key.decode()}


def test_add_list_delete(api: Api, mesh: str):
    pair = _pair()
    added = _add(api, mesh, pair)  # the Mesh need not exist
    assert added.status_code == 200, added.text
    body = added.json()
    assert set(body) == {"id", "cert"} and body["cert"] == pair["cert"]
    uuid.UUID(body["id"])
    listed = api.http.get(_certs(api, mesh))
    assert (listed.status_code, listed.json()) == (200, [body])  # never the key
    deleted = api.http.delete(f"{_certs(api, mesh)}/{body['id']}")
    assert (deleted.status_code, deleted.text) == (200, "")
    assert api.http.get(_certs(api, mesh)).json() == []


def test_kumas_errors(api: Api, mesh: str):
    missing = api.http.get(_certs(api, mesh))
    assert (missing.status_code, missing.json()) == (
        404,
        {"title": "Could not retrieve signing certs", "details": "Not found"},
    )
    empty = _add(api, mesh, {"cert": "", "key": ""})
    assert (empty.status_code, empty.json()) == (
        400,
        {
            "title": "Could not add signing cert",
            "details": "Resource is not valid",
            "causes": [
                {"field": "cert", "message": "must not be empty"},
                {"field": "key", "message": "must not be empty"},
            ],
        },
    )
    assert _add(api, mesh, _pair()).status_code == 200
    second = _add(api, mesh, _pair())
    assert (second.status_code, second.json()) == (
        409,
        {
            "title": "Could not add signing cert",
            "details": "cannot add more than 1 CA root to provided CA",
        },
    )
    unknown = api.http.delete(f"{_certs(api, mesh)}/no-such-id")
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"title": "Could not delete signing cert", "details": "Not found"},
    )


def test_certificate_checks_of_kuma_04(api: Api, mesh: str):
    response = _add(api, mesh, _pair(ca=False, cert_sign=False))
    assert (response.status_code, response.json()) == (
        400,
        {
            "title": "Could not add signing cert",
            "details": "Resource is not valid",
            "causes": [
                {
                    "field": "cert",
                    "message": "basic constraint 'CA' must be set to 'true' "
                    "(see X509-SVID: 4.1. Basic Constraints)",
                },
                {
                    "field": "cert",
                    "message": "key usage extension 'keyCertSign' must be set "
                    "(see X509-SVID: 4.3. Key Usage)",
                },
            ],
        },
    )
    mismatch = {"cert": _pair()["cert"], "key": _pair()["key"]}
    assert _add(api, mesh, mismatch).json()["causes"] == [
        {
            "field": "cert",
            "message": "not a valid TLS key pair: tls: private key does not match public key",
        }
    ]
    assert api.http.get(_certs(api, mesh)).status_code == 404  # nothing stored


def test_the_mesh_and_its_signing_certificate(api: Api, mesh: str):
    spec = {"type": "Mesh", "name": mesh, "mtls": {"enabled": True, "ca": {"provided": {}}}}
    refused = api.put(f"/meshes/{mesh}", spec)
    assert (refused.status_code, refused.json()) == (
        400,
        {
            "title": "Could not create a resource",
            "details": "Resource is not valid",
            "causes": [{"field": "mtls.ca.provided", "message": NO_SIGNING_CERT}],
        },
    )
    cert_id = _add(api, mesh, _pair()).json()["id"]
    assert api.put(f"/meshes/{mesh}", spec).status_code == 201
    in_use = api.http.delete(f"{_certs(api, mesh)}/{cert_id}")
    assert (in_use.status_code, in_use.json()) == (
        400,
        {
            "title": "Could not delete signing cert",
            "details": "Cannot delete signing certificate when the mTLS in the mesh is active "
            "and type of CA is Provided",
        },
    )
    builtin = {**spec, "mtls": {"enabled": True, "ca": {"builtin": {}}}}
    changed = api.put(f"/meshes/{mesh}", builtin)
    assert changed.status_code == 400
    assert changed.json()["causes"] == [
        {
            "field": "mtls.ca",
            "message": "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and "
            "then change the CA",
        }
    ]
    assert api.put(f"/meshes/{mesh}", {**spec, "mtls": {"ca": {"provided": {}}}}).status_code == 200
    assert api.http.delete(f"{_certs(api, mesh)}/{cert_id}").status_code == 200
    # The Mesh's delete takes its (now empty) provided CA along.
    assert api.delete(f"/meshes/{mesh}").status_code == 200
    assert api.http.get(_certs(api, mesh)).status_code == 404


def test_delete_the_whole_ca(api: Api, mesh: str):
    assert _add(api, mesh, _pair()).status_code == 200
    assert api.http.delete(f"{api.url}/meshes/{mesh}/ca/provided").status_code == 200
    gone = api.http.delete(f"{api.url}/meshes/{mesh}/ca/provided")
    assert (gone.status_code, gone.json()) == (
        404,
        {"title": "Could not delete CA", "details": "Not found"},
    )


def test_mesh_names_the_store_cannot_hold(api: Api):
    bad = _add(api, "kuma.system", _pair())  # the reserved mesh of the control plane's secrets
    assert bad.status_code == 400
    assert bad.json()["causes"][0]["field"] == "mesh"
    long = _add(api, "m" * 90, _pair())
    assert long.json()["causes"] == [
        {"field": "mesh", "message": "must be at most 89 characters long"}
    ]


def test_writes_need_the_admin_credential(serve_session: Serve):
    strict = serve_session(trust_loopback=False, admin_token="s3cret")
    mesh = f"m-{uuid.uuid4().hex[:8]}"
    url = f"{strict.url}/meshes/{mesh}/ca/provided/certificates"
    assert strict.http.post(url, json=_pair()).status_code == 401
    admin = {"Authorization": "Bearer s3cret"}
    added = strict.http.post(url, json=_pair(), headers=admin)
    assert added.status_code == 200
    assert strict.http.get(url).status_code == 200  # reads are open: certificates only
    cert_url = f"{url}/{added.json()['id']}"
    assert strict.http.delete(cert_url).status_code == 401
    assert strict.http.delete(cert_url, headers=admin).status_code == 200


def test_a_key_from_another_address_over_plain_http_is_refused(serve_session: Serve):
    """For real: the API on every interface, dialled at this host's non-loopback address (the
    kernel makes that the peer's address too), with the admin credential. The key is refused
    and nothing is stored; the same upload from the loopback address is accepted."""
    with non_loopback_address() as address:
        served = serve_session(host="0.0.0.0", trust_loopback=False, admin_token="s3cret")
        port = served.url.rsplit(":", 1)[1]
        mesh = f"m-{uuid.uuid4().hex[:8]}"
        path = f"/meshes/{mesh}/ca/provided/certificates"
        admin = {"Authorization": "Bearer s3cret"}
        remote = served.http.post(f"http://{address}:{port}{path}", json=_pair(), headers=admin)
        assert (remote.status_code, remote.json()["title"]) == (403, "TLS or same host required")
        local = f"http://127.0.0.1:{port}{path}"
        assert served.http.get(local).status_code == 404  # nothing stored
        assert served.http.post(local, json=_pair(), headers=admin).status_code == 200
        provided_ca.delete_ca(served.core.store, mesh)


def test_a_key_crosses_hosts_only_over_tls(memory_only_api: Api):
    """The peer address and the connection's own TLS decide (the WSGI environ the servers set);
    the admin credential is sent so that only the transport is judged."""
    app = memory_only_api
    flask_app = create_app(app.cfg, app.core, admin_token="s3cret", trust_loopback=False)
    client = flask_app.test_client()
    admin = {"Authorization": "Bearer s3cret"}
    mesh = f"m-{uuid.uuid4().hex[:8]}"
    path = f"/meshes/{mesh}/ca/provided/certificates"
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    plain = client.post(path, json=_pair(), headers=admin, environ_base=remote)
    assert plain.status_code == 403
    assert plain.json["title"] == "TLS or same host required"
    assert client.get(path).status_code == 404  # nothing stored
    # The same request over TLS (wsgi.url_scheme https, as kuma.edge.dual_listener sets it).
    secure = client.post(
        path, json=_pair(), headers=admin, environ_base=remote, base_url="https://cp.example"
    )
    assert secure.status_code == 200, secure.json
    # Reads and deletes carry no key: from anywhere, with the credential.
    cert_id = secure.json["id"]
    assert client.get(path, environ_base=remote).status_code == 200
    deleted = client.delete(f"{path}/{cert_id}", headers=admin, environ_base=remote)
    assert deleted.status_code == 200
    provided_ca.delete_ca(app.core.store, mesh)
