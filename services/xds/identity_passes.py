"""The identity side of reconcile passes: which nodes of an mTLS mesh need their identity looked
at, making those current before their configs are generated, and the secrets each node's
config carries. The reconciler only schedules; issuing, rotation timers and trust bundles are
the IdentityManager's (sds/identities.py).

Identities are keyed by the authenticated node id of the stream (`{mesh}.{name}`), and a node's
secrets are only ever its own identity and its mesh's trust bundle."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import Message

from kuma.resources.base import Resource
from services.xds.build import MeshBuild
from services.xds.nodes import split_node_id
from services.xds.sds.identities import IdentityManager

# mesh -> the node ids whose identity is due (None: every node of the mesh)
Due = dict[str, set[str] | None]


def service_of(dataplane: Resource) -> str:
    """The service a dataplane's identity names (spec §9.2)."""
    return dataplane.spec.service()  # type: ignore[no-any-return]


class IdentityPasses:
    """Loop-bound, as the reconciler. Without a manager (no mTLS support) it does nothing."""

    def __init__(self, manager: IdentityManager | None) -> None:
        self.manager = manager
        self._due: Due = {}

    def mark(self, mesh: str, node_id: str | None = None) -> None:
        """Look at `node_id`'s identity in `mesh` (None: every node's) at the next pass:
        newcomers and due rotations, without regenerating every dataplane of the mesh."""
        if node_id is None:
            self._due[mesh] = None
        else:
            due = self._due.setdefault(mesh, set())
            if due is not None:
                due.add(node_id)

    def take_due(self) -> Due:
        due, self._due = self._due, {}
        return due

    async def before_pass(self, state: MeshBuild, nodes: list[str]) -> None:
        """A full pass over `state`'s mesh begins: its nodes' identities are made current when
        its mTLS is on, and dropped when it is off."""
        if self.manager is None or state.snapshot is None:
            return
        if state.mtls is not None:
            await self.prepare(state, nodes)
        else:
            self.manager.forget_mesh(state.snapshot.mesh.name)

    async def refresh(self, state: MeshBuild, watched: list[str], due: set[str] | None) -> set[str]:
        """Between full passes: make the due identities of `watched` nodes current; the nodes
        whose secrets changed (only those are regenerated)."""
        if self.manager is None or state.mtls is None:
            return set()  # mTLS went off meanwhile: the full pass drops them
        return await self.prepare(
            state, watched if due is None else [n for n in watched if n in due]
        )

    async def prepare(self, state: MeshBuild, nodes: list[str]) -> set[str]:
        """Make the identities of `nodes` current; the nodes whose secrets changed."""
        assert self.manager is not None and state.snapshot is not None
        wanted = []
        for node_id in nodes:
            parts = split_node_id(node_id)
            dataplane = state.snapshot.dataplane(parts[1]) if parts else None
            if parts is not None and dataplane is not None:
                # a part: a full pass asks it of every node, and it changes with its Dataplane
                wanted.append((node_id, state.parts.build(service_of, dataplane)))
        return await self.manager.prepare(state.snapshot.mesh.name, wanted)

    def secrets(self, state: MeshBuild, node_id: str, mesh: str) -> Mapping[str, Message]:
        """The secrets the node's config carries: none unless its mesh has mTLS on."""
        if self.manager is None or state.mtls is None:
            return {}
        return self.manager.secrets_for(node_id, mesh)

    def forget(self, node_id: str) -> None:
        if self.manager is not None:
            self.manager.forget(node_id)

    def forget_mesh(self, mesh: str) -> None:
        if self.manager is not None:
            self.manager.forget_mesh(mesh)
