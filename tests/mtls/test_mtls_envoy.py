"""mTLS between two real Envoys configured by the xDS service: identities over ADS, SPIFFE
checks, TrafficPermission RBAC, bounded closing of old connections, mTLS on/off on a live mesh."""

from __future__ import annotations

import time

import pytest

from kuma import provided_ca
from kuma.resources.registry import TRAFFIC_PERMISSION
from tests.apply import apply
from tests.ca_certs import make_ca
from tests.mtls.harness import DRAIN_TIME_S, PERMISSION, Conversation, elapsed, set_mtls, talk
from tests.waiting import wait_until

pytestmark = pytest.mark.envoy

OK = b"backend:hi"


def test_permission_allows_then_denies_over_mutual_tls(core, xds, pair):
    # Both Envoys hold their identity and trust the mesh CA.
    wait_until(
        lambda: {u for u, _ in pair.web.identities()} == {"spiffe://default/web"}, 15, "web id"
    )
    wait_until(
        lambda: {u for u, _ in pair.backend.identities()} == {"spiffe://default/backend"},
        15,
        "backend identity",
    )
    assert pair.web.trusted() == {"spiffe://default"}
    assert pair.backend.trusted() == {"spiffe://default"}

    # mTLS on, no TrafficPermission: denied (Kuma's default, spec §8.12).
    time.sleep(0.5)
    assert talk(pair.out) == b""
    # A plain-text client cannot reach the inbound port at all.
    assert talk(pair.inbound) == b""

    started = time.monotonic()
    apply(core, PERMISSION)
    wait_until(lambda: talk(pair.out) == OK, 10, "traffic allowed by the permission")
    print(f"permission -> first allowed connection: {elapsed(started)}s")
    assert talk(pair.inbound) == b""  # still no plain text

    # Deleting the permission: new connections are refused at once; an open one is closed when
    # the old filter chain's drain ends (Envoy's --drain-time-s).
    conversation = Conversation(pair.out)
    assert conversation.say() == OK
    started = time.monotonic()
    core.manager.delete(TRAFFIC_PERMISSION, "default", "web-to-backend")
    wait_until(lambda: talk(pair.out) == b"", 10, "new connections denied")
    denied_after = elapsed(started)
    wait_until(lambda: conversation.say() == b"", DRAIN_TIME_S + 10, "old connection closed")
    closed_after = elapsed(started)
    conversation.close()
    print(f"delete -> new connections denied: {denied_after}s; old one closed: {closed_after}s")
    assert denied_after < 2.0
    assert closed_after < DRAIN_TIME_S + 3


def test_wildcard_source_allows_any_identity_of_the_mesh(core, xds, pair):
    apply(core, PERMISSION.replace("service: web", "service: '*'"))
    wait_until(lambda: talk(pair.out) == OK, 15, "traffic allowed by the * permission")


def test_mtls_off_and_on_again_on_a_live_mesh(core, xds, pair):
    apply(core, PERMISSION)
    wait_until(lambda: talk(pair.out) == OK, 15, "mTLS traffic")

    set_mtls(core, False)
    # Plain text: the inbound port now answers a plain client directly, no RBAC.
    wait_until(lambda: talk(pair.inbound) == OK, 10, "plain text inbound")
    assert talk(pair.out) == OK
    wait_until(lambda: not pair.backend.identities(), 10, "identity gone from the backend Envoy")
    core.manager.delete(TRAFFIC_PERMISSION, "default", "web-to-backend")
    time.sleep(0.3)
    assert talk(pair.out) == OK  # mTLS off: permissions are not enforced

    set_mtls(core, True)
    wait_until(lambda: talk(pair.inbound) == b"", 10, "inbound requires TLS again")
    wait_until(lambda: talk(pair.out) == b"", 10, "denied again without a permission")
    apply(core, PERMISSION)
    wait_until(lambda: talk(pair.out) == OK, 10, "mTLS traffic again")
    assert {u for u, _ in pair.backend.identities()} == {"spiffe://default/backend"}


PROVIDED_SERIAL = 0x5EED
MESH_ON_PROVIDED = "type: Mesh\nname: default\nmtls:\n  enabled: true\n  ca:\n    provided: {}\n"


def _trusts_serial(envoy, serial: int) -> bool:
    return any(
        int(cert["serial_number"], 16) == serial
        for ctx in envoy.certs()
        for cert in ctx.get("ca_cert", [])
    )


def test_the_mesh_moves_to_a_provided_ca(core, xds, pair):
    """mTLS off, the operator's CA uploaded, mTLS on with it: both Envoys trust that root only,
    hold identities it signed (in-process CA), and talk over mutual TLS again."""
    apply(core, PERMISSION)
    wait_until(lambda: talk(pair.out) == OK, 15, "mTLS traffic with the builtin CA")
    set_mtls(core, False)
    provided_ca.add_signing_cert(core.store, "default", *make_ca(serial=PROVIDED_SERIAL))
    apply(core, MESH_ON_PROVIDED)
    for envoy in (pair.web, pair.backend):
        wait_until(lambda e=envoy: _trusts_serial(e, PROVIDED_SERIAL), 15, "the provided root")
        serials = {c["serial_number"] for ctx in envoy.certs() for c in ctx.get("ca_cert", [])}
        assert serials == {f"{PROVIDED_SERIAL:x}"}  # the builtin root is trusted no more
    wait_until(lambda: talk(pair.out) == OK, 15, "mTLS traffic with the provided CA")
    assert {u for u, _ in pair.backend.identities()} == {"spiffe://default/backend"}
