"""Which identities a reconcile pass looks at: newcomers one by one, a rotation for the mesh."""

from __future__ import annotations

import asyncio

from kuma import ca
from kuma.manager import ResourceManager
from kuma.resources import wire
from kuma.resources.base import Resource
from kuma.resources.registry import MESH
from kuma.store import MemoryStore
from services.xds.build import MeshBuild
from services.xds.generator.security import IDENTITY_CERT, MESH_CA, mesh_mtls
from services.xds.identity_passes import IdentityPasses
from services.xds.sds.identities import IdentityManager


def test_newcomers_are_looked_at_alone_until_the_whole_mesh_is_due() -> None:
    passes = IdentityPasses(manager=None)
    passes.mark("default", "default.web-1")
    passes.mark("default", "default.web-2")
    passes.mark("other", "other.a")
    assert passes.take_due() == {
        "default": {"default.web-1", "default.web-2"},
        "other": {"other.a"},
    }
    assert passes.take_due() == {}  # taken once
    passes.mark("default", "default.web-1")
    passes.mark("default")  # a rotation: every node of the mesh
    passes.mark("default", "default.web-3")  # stays "every node"
    assert passes.take_due() == {"default": None}


def _mesh(mtls: bool) -> Resource:
    return wire.from_json({"type": "Mesh", "name": "demo", "mtls": {"enabled": mtls}})


def _dataplane(name: str, service: str, ip: str) -> Resource:
    inbound = {"interface": f"{ip}:8080:80", "tags": {"service": service}}
    return wire.from_json(
        {"type": "Dataplane", "mesh": "demo", "name": name, "networking": {"inbound": [inbound]}}
    )


def test_a_pass_issues_each_node_its_own_identity_and_drops_them_when_mtls_goes_off() -> None:
    resources = ResourceManager(MemoryStore())
    resources.create(_mesh(True))
    manager = IdentityManager(ca.InProcessCA(resources.store), lifetime=3600, rotation_percent=80)
    passes = IdentityPasses(manager)
    state = MeshBuild(mesh_mtls)
    dataplanes = [
        _dataplane("web-1", "web", "10.0.0.1"),
        _dataplane("backend-1", "backend", "10.0.0.2"),
    ]
    nodes = ["demo.web-1", "demo.backend-1", "demo.gone"]  # no Dataplane for the last one

    async def run() -> None:
        state.advance(resources.get(MESH, "demo", "demo"), dataplanes)
        await passes.before_pass(state, nodes)
        web = passes.secrets(state, "demo.web-1", "demo")
        backend = passes.secrets(state, "demo.backend-1", "demo")
        assert set(web) == set(backend) == {IDENTITY_CERT, MESH_CA}
        assert web[IDENTITY_CERT] is not backend[IDENTITY_CERT]  # never shared
        assert web[MESH_CA] is backend[MESH_CA]
        assert passes.secrets(state, "demo.gone", "demo").keys() == {MESH_CA}
        # Nothing due: a refresh changes nothing; the mesh's mTLS off: identities dropped.
        assert await passes.refresh(state, nodes, None) == set()
        state.advance(_mesh(False), dataplanes)
        await passes.before_pass(state, nodes)
        assert passes.secrets(state, "demo.web-1", "demo") == {}
        assert manager.identity("demo.web-1") is None
        manager.close()

    asyncio.run(run())


def test_without_mtls_support_a_node_carries_no_secrets_and_nothing_is_issued() -> None:
    passes = IdentityPasses(manager=None)
    state = MeshBuild()
    assert passes.secrets(state, "default.web-1", "default") == {}
    assert asyncio.run(passes.refresh(state, ["default.web-1"], None)) == set()
    passes.forget("default.web-1")
    passes.forget_mesh("default")
