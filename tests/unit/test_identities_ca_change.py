"""A mesh whose CA changes (to a provided one) gets identities signed by the new CA at the next
`prepare`, though the old ones are far from their rotation (services/xds/sds/identities.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from cryptography import x509

from kuma import ca, provided_ca
from kuma.manager import ResourceManager
from kuma.resources import wire
from kuma.resources.registry import MESH
from kuma.store import MemoryStore
from services.xds.sds.identities import IdentityManager
from tests.ca_certs import make_ca

NODES = [("demo.web-1", "web"), ("demo.backend-1", "backend")]


def _issuer(manager: IdentityManager, node_id: str) -> x509.Name:
    identity = manager.identity(node_id)
    assert identity is not None
    return x509.load_pem_x509_certificate(identity.chain_pem).issuer


def test_identities_follow_the_mesh_to_its_new_ca() -> None:
    resources = ResourceManager(MemoryStore())
    resources.create(wire.from_json({"type": "Mesh", "name": "demo", "mtls": {"enabled": True}}))
    identities = IdentityManager(
        ca.InProcessCA(resources.store), lifetime=3600, rotation_percent=80
    )

    async def run() -> None:
        assert await identities.prepare("demo", NODES) == {n for n, _ in NODES}
        builtin = ca.mesh_roots(resources.store, "demo")[0].cert.subject
        assert {_issuer(identities, n) for n, _ in NODES} == {builtin}
        assert await identities.prepare("demo", NODES) == set()  # nothing due
        # The mesh moves to the operator's CA (the store changed at once: no mTLS-off step seen).
        cert, key = make_ca("operator-root")
        provided_ca.add_signing_cert(resources.store, "demo", cert, key)
        mesh = resources.get(MESH, "demo", "demo")
        spec = wire.from_json(
            {"type": "Mesh", "name": "demo", "mtls": {"enabled": True, "ca": {"provided": {}}}}
        ).spec
        resources.store.update(replace(mesh, spec=spec))
        assert await identities.prepare("demo", NODES[:1]) == {n for n, _ in NODES}
        operator = x509.load_pem_x509_certificate(cert).subject
        assert {_issuer(identities, n) for n, _ in NODES} == {operator}
        identities.close()

    asyncio.run(run())
