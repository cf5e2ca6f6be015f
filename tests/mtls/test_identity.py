"""Who gets an identity (spec §9.2), rotation on the open stream, and the standalone SDS server."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from kuma import tokens
from services.xds.ads.types import SECRET
from tests.apply import apply
from tests.integration.ads_watch import AdsWatcher
from tests.mtls.harness import PERMISSION, Conversation, Envoy, dataplane, set_mtls, talk
from tests.waiting import wait_until
from tests.xds_ads.harness import free_port

pytestmark = pytest.mark.envoy

OK = b"backend:hi"


def test_token_of_another_dataplane_or_none_is_refused_before_anything_is_sent(core, xds):
    set_mtls(core, True)
    apply(core, dataplane("web-1", "web", free_port(), free_port()))
    apply(core, dataplane("web-2", "web", free_port(), free_port()))
    apply(core, dataplane("web-3", "web", free_port(), free_port()))
    # web-1's token, used by web-2 (file) and by web-3 (stream metadata); web-1 with no token
    # (same-host trust is off in these tests).
    stolen = tokens.issue(core.store, "default", "web-1")
    envoys = [
        Envoy("default", "web-2", xds, stolen),
        Envoy("default", "web-3", xds, stolen, header=True),
        Envoy("default", "web-1", xds, None),
    ]
    try:
        for envoy in envoys:
            wait_until(envoy.refused, 15, "Envoy's stream to be refused")
        time.sleep(1.0)  # Envoy retries: still nothing, not even the mesh CA
        for envoy in envoys:
            # Each retry is connected for the moment it takes to refuse it: a stream taken in
            # would stay connected, and this would time out.
            wait_until(envoy.refused, 5, "Envoy's retried stream to be refused")
            assert envoy.secrets() == {}
            assert envoy.identities() == set()
        for name in ("web-1", "web-2", "web-3"):
            assert xds.identities.identity(f"default.{name}") is None
            assert f"default.{name}" not in xds.cache.watched()
    finally:
        for envoy in envoys:
            envoy.stop()


@pytest.mark.trust_loopback
def test_same_host_envoy_without_token_gets_identity_but_a_stolen_token_does_not(core, xds):
    set_mtls(core, True)
    apply(core, dataplane("web-1", "web", free_port(), free_port()))
    apply(core, dataplane("web-2", "web", free_port(), free_port()))
    stolen = tokens.issue(core.store, "default", "web-1")
    local = Envoy("default", "web-1", xds, None)
    thief = Envoy("default", "web-2", xds, stolen)
    try:
        wait_until(lambda: "identity_cert" in local.secrets(), 15, "identity of the local Envoy")
        assert {u for u, _ in local.identities()} == {"spiffe://default/web"}
        # a presented token is checked even from this host: the thief's stream is refused
        wait_until(thief.refused, 15, "the thief's stream to be refused")
        assert thief.secrets() == {}
        assert xds.identities.identity("default.web-2") is None
    finally:
        local.stop()
        thief.stop()


@pytest.mark.lifetime(3, 50)  # a new certificate every 1.5 s
def test_rotation_on_a_live_stream_without_traffic_loss(core, xds, pair):
    apply(core, PERMISSION)
    wait_until(lambda: talk(pair.out) == OK, 15, "mTLS traffic")
    failures, requests = [], [0]
    stop = threading.Event()

    def traffic() -> None:
        conversation = Conversation(pair.out)  # one long-lived connection ...
        while not stop.is_set():
            for answer in (talk(pair.out), conversation.say()):  # ... and a new one each time
                requests[0] += 1
                if answer != OK:
                    failures.append(answer)
            time.sleep(0.02)
        conversation.close()

    serials: set[str] = set()
    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            serials |= {s for u, s in pair.backend.identities() if u.endswith("/backend")}
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    print(f"backend serials seen: {len(serials)}; requests: {requests[0]}; failed: {len(failures)}")
    assert len(serials) >= 3  # the first certificate and at least two rotations
    assert requests[0] > 100 and failures == []


# --- the standalone SDS server (5677) -------------------------------------------------------


def _stream(xds, node_id: str, names: list[str], token: str | None):
    creds = grpc.ssl_channel_credentials(root_certificates=xds.cert_pem)
    channel = grpc.secure_channel(f"localhost:{xds.sds_port}", creds)
    stub = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
    request = discovery_pb2.DiscoveryRequest(
        node=base_pb2.Node(id=node_id), resource_names=names, type_url=SECRET
    )
    metadata = [("authorization", f"Bearer {token}")] if token else []

    def requests():  # as Envoy does, keep the stream open: the secrets come when they are ready
        yield request
        time.sleep(5)

    return channel, stub.StreamSecrets(requests(), metadata=metadata, timeout=5)


def _secrets(response) -> dict[str, secret_pb2.Secret]:
    out = {}
    for packed in response.resources:
        secret = secret_pb2.Secret()
        packed.Unpack(secret)
        out[secret.name] = secret
    return out


def test_sds_server_serves_identity_to_its_owner_only(core, xds):
    set_mtls(core, True)
    apply(core, dataplane("web-1", "web", free_port(), free_port()))
    assert xds.sds_port and xds.cert_pem

    channel, stream = _stream(
        xds,
        "default.web-1",
        ["identity_cert", "mesh_ca"],
        tokens.issue(core.store, "default", "web-1"),
    )
    with channel:
        secrets = _secrets(next(stream))
    leaf = x509.load_pem_x509_certificate(
        secrets["identity_cert"].tls_certificate.certificate_chain.inline_bytes
    )
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [u.value for u in uris] == ["spiffe://default/web"]
    assert b"BEGIN CERTIFICATE" in secrets["mesh_ca"].validation_context.trusted_ca.inline_bytes

    # Without a token, or with another dataplane's, the stream gets nothing, not even the CA.
    for token, code in (
        (None, grpc.StatusCode.UNAUTHENTICATED),
        (tokens.issue(core.store, "default", "web-2"), grpc.StatusCode.PERMISSION_DENIED),
    ):
        for names in (["identity_cert"], ["mesh_ca"]):
            channel, stream = _stream(xds, "default.web-1", names, token)
            with channel, pytest.raises(grpc.RpcError) as exc:
                next(stream)
            assert exc.value.code() == code


@pytest.mark.trust_loopback
def test_newcomers_to_an_mtls_mesh_cost_their_own_config_only(core, xds):
    """Each stream that connects gets its config and then its identity, without the whole mesh
    being regenerated for it: a connect storm stays linear (it was quadratic, and the last
    streams of a few thousand waited so long that gRPC cancelled them)."""
    set_mtls(core, True)
    n = 30
    for i in range(n):
        apply(core, dataplane(f"web-{i}", "web", free_port(), free_port()))
    watchers = []
    try:
        watchers.append(AdsWatcher(f"127.0.0.1:{xds.port}", "default.web-0", xds.cert_pem))
        wait_until(lambda: xds.identities.identity("default.web-0"), 15, "the first identity")
        before = xds.reconciler.stats.generated
        for i in range(1, n):
            watchers.append(AdsWatcher(f"127.0.0.1:{xds.port}", f"default.web-{i}", xds.cert_pem))
            wait_until(lambda i=i: xds.identities.identity(f"default.web-{i}"), 15, "identity")
        generated = xds.reconciler.stats.generated - before
        # Arrival, then identity: two generations per newcomer (a full pass each: n*n/2).
        assert generated <= 3 * (n - 1), generated
        assert all(w.ended is None for w in watchers)
    finally:
        for watcher in watchers:
            watcher.close()


def test_sds_server_answers_fetch_and_delta_unimplemented_as_kuma(xds):
    creds = grpc.ssl_channel_credentials(root_certificates=xds.cert_pem)
    with grpc.secure_channel(f"localhost:{xds.sds_port}", creds) as channel:
        stub = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as fetch:
            stub.FetchSecrets(discovery_pb2.DiscoveryRequest(type_url=SECRET), timeout=5)
        with pytest.raises(grpc.RpcError) as delta:
            next(stub.DeltaSecrets(iter([discovery_pb2.DeltaDiscoveryRequest()]), timeout=5))
    assert fetch.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert delta.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_each_dataplane_holds_its_own_key_and_sds_serves_the_ads_identity(core, xds):
    """Two dataplanes of one service share every generated part but never key material; the
    SDS port serves each the very identity its node holds (one identity per dataplane)."""
    set_mtls(core, True)
    for name in ("web-1", "web-2"):
        apply(core, dataplane(name, "web", free_port(), free_port()))
    held = {}
    for name in ("web-1", "web-2"):
        token = tokens.issue(core.store, "default", name)
        channel, stream = _stream(xds, f"default.{name}", ["identity_cert"], token)
        with channel:
            certificate = _secrets(next(stream))["identity_cert"].tls_certificate
            identity = xds.identities.identity(f"default.{name}")  # while its stream is open
            assert identity is not None
            assert certificate.private_key.inline_bytes == identity.key_pem
            assert certificate.certificate_chain.inline_bytes == identity.chain_pem
            held[name] = certificate.private_key.inline_bytes
    assert held["web-1"] != held["web-2"]
