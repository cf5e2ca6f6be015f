"""The DataplaneInsight's `mTLS` block (Kuma 1.x's): the expiry of the certificate the
dataplane's Envoy really holds, when it was last regenerated, and how many times (issue 20: the
GUI's certificate column reads it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kuma.errors import NotFoundError
from kuma.resources.insight import MtlsInsight
from kuma.resources.registry import DATAPLANE_INSIGHT
from kuma.wiring import Core
from tests.mtls.conftest import Pair
from tests.mtls.harness import Envoy, set_mtls
from tests.waiting import wait_until

pytestmark = pytest.mark.envoy


def _envoy_expiry(envoy: Envoy, service: str) -> datetime | None:
    """The expiry of the workload certificate Envoy presents, from its admin `/certs`."""
    for ctx in envoy.certs():
        for cert in ctx.get("cert_chain", []):
            uris = [s.get("uri", "") for s in cert.get("subject_alt_names", [])]
            if f"spiffe://default/{service}" in uris:
                return datetime.fromisoformat(cert["expiration_time"])
    return None


def _mtls(core: Core, name: str) -> MtlsInsight | None:
    try:
        return core.manager.get(DATAPLANE_INSIGHT, "default", name).spec.mtls
    except NotFoundError:
        return None


def _agrees(core: Core, envoy: Envoy, name: str, service: str) -> MtlsInsight | None:
    """The insight's block when its expiry is that of Envoy's certificate, else None."""
    mtls = _mtls(core, name)
    expiry = _envoy_expiry(envoy, service)
    if mtls is None or expiry is None or mtls.certificate_expiration_time != expiry:
        return None
    return mtls


@pytest.mark.lifetime(4, 50)  # a new certificate every 2 s
def test_insight_records_the_expiry_of_envoys_certificate_and_each_regeneration(
    core: Core, pair: Pair
):
    first = wait_until(
        lambda: _agrees(core, pair.backend, "backend-1", "backend"),
        15,
        "backend-1's insight to name the expiry of the certificate its Envoy holds",
    )
    assert first.certificate_regenerations >= 1
    assert first.last_certificate_regeneration is not None
    assert first.certificate_expiration_time is not None
    lifetime = first.certificate_expiration_time - first.last_certificate_regeneration
    assert 3 <= lifetime.total_seconds() <= 5  # issued for 4 s (the CA back-dates, not this)

    # Rotation on the open stream: every regeneration is counted, and the block follows Envoy.
    later = wait_until(
        lambda: (
            (m := _agrees(core, pair.backend, "backend-1", "backend"))
            and m.certificate_regenerations >= first.certificate_regenerations + 2
            and m
        ),
        15,
        "two more regenerations recorded, agreeing with Envoy's certificate",
    )
    assert later.certificate_expiration_time is not None
    assert later.last_certificate_regeneration is not None
    assert later.certificate_expiration_time > first.certificate_expiration_time
    assert later.last_certificate_regeneration > first.last_certificate_regeneration
    assert later.last_certificate_regeneration <= datetime.now(UTC)

    # The web side too: every dataplane with an identity gets the block.
    wait_until(
        lambda: _agrees(core, pair.web, "web-1", "web"), 15, "web-1's certificate in its insight"
    )


def test_the_block_goes_when_the_meshs_mtls_goes_off(core: Core, pair: Pair):
    """A dataplane whose mesh turned mTLS off holds no certificate: its insight says so."""
    wait_until(lambda: _mtls(core, "backend-1"), 15, "backend-1's mTLS block")
    set_mtls(core, False)
    wait_until(
        lambda: _mtls(core, "backend-1") is None and _mtls(core, "web-1") is None,
        15,
        "the mTLS blocks gone once the mesh's mTLS is off",
    )
