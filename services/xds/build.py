"""MeshBuild: everything this replica has built for one mesh, and the one place it is kept.

It holds the mesh's current snapshot, its mTLS hook, the parts generation built from them
(generator.parts: policy choices, listeners, the shared clusters and per-service endpoint
sets), the packed bytes (ads.cache.Packer) and, per connected dataplane, what its last config
was made from. Nothing else in the xDS service caches generated content.

Work in proportion to what changed: a dataplane whose inputs (its own Dataplane and metadata,
the policies chosen for it, the endpoints its routes reach, the mesh, its templates and mTLS
hook, its secrets) are those of its last config is answered with its last snapshot, at the cost
of looking its choices up. Dataplanes of one shape share their choices, so a mesh-wide policy
change costs one choice per shape, and a node only when what it was given changes.

Node ids are the authenticated `{mesh}.{name}` of their streams (services/xds/auth.py); the
secrets spliced into a node's snapshot are that node's own (sds/identities.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from kuma.resources.base import Resource
from kuma.store.base import Known
from services.xds.ads.cache import NodeSnapshot, Packed, Packer, TypeSnapshot
from services.xds.generator import (
    GenerationError,
    MeshSnapshot,
    MtlsHook,
    ProxyConfig,
    ProxyMetadata,
)
from services.xds.generator.config import SECRET, TYPE_URLS
from services.xds.generator.context import Choices, Proxy, Shape, choose
from services.xds.generator.parts import Parts
from services.xds.generator.proxy import layers_of

# The mTLS hook of a mesh snapshot (None: plaintext), e.g. `security.mesh_mtls`.
MtlsHooks = Callable[[MeshSnapshot], MtlsHook | None]

log = logging.getLogger("kuma.xds.build")

_GONE = ("dataplane not in the mesh",)
_NO_METADATA = ProxyMetadata()


@dataclass
class _Built:
    """One node's last config: what it was made from, and its snapshot."""

    inputs: tuple[Any, ...]
    secrets: tuple[Message, ...]
    snapshot: NodeSnapshot


@dataclass
class BuildStats:
    generated: int = 0  # configs generated
    unchanged: int = 0  # nodes answered with their last snapshot


@dataclass
class MeshBuild:
    mtls_hooks: MtlsHooks | None = None
    snapshot: MeshSnapshot | None = None
    mtls: MtlsHook | None = None
    parts: Parts = field(default_factory=Parts)
    packer: Packer = field(default_factory=Packer)
    stats: BuildStats = field(default_factory=BuildStats)
    _nodes: dict[str, _Built] = field(default_factory=dict)
    # The current snapshot's choices by shape: dataplanes of one shape look theirs up once.
    _choices: dict[Shape, Choices] = field(default_factory=dict)

    def advance(self, mesh: Resource, resources: Iterable[Resource]) -> bool:
        """Take a new reading of the mesh's resources; False when it changes nothing."""
        snapshot = MeshSnapshot.build(mesh, resources, self.snapshot)
        if self.snapshot is not None and snapshot.revision == self.snapshot.revision:
            return False
        self.snapshot = snapshot
        self._choices = {}
        self.mtls = self.mtls_hooks(snapshot) if self.mtls_hooks is not None else None
        return True

    @property
    def known(self) -> Known | None:
        """What the mesh's current snapshot holds, by write: its next reading decodes none of
        it again (ResourceStore.list)."""
        return self.snapshot.known if self.snapshot is not None else None

    def next_pass(self, nodes: int) -> None:
        """A pass over every connected node of the mesh begins: what it builds is what is
        alive, and what the last two passes did not use is let go."""
        self.parts.next_pass(nodes)
        self.packer.serving(nodes)
        self.packer.next_pass()

    def serving(self, nodes: int) -> None:
        self.packer.serving(nodes)

    def _shared_type(self, items: tuple[Packed, ...]) -> TypeSnapshot:
        # One object per content among the mesh's nodes: a CDS answer that every dataplane of
        # a shape gets is selected and versioned once, not once per dataplane.
        return self.parts.build(TypeSnapshot.of, items)

    def node_snapshot(self, node_id: str) -> NodeSnapshot | None:
        """The node's last snapshot, if one was made."""
        built = self._nodes.get(node_id)
        return built.snapshot if built is not None else None

    def forget(self, node_id: str) -> None:
        self._nodes.pop(node_id, None)

    def generate(
        self,
        node_id: str,
        name: str,
        metadata: ProxyMetadata | None,
        secrets: Mapping[str, Message],
    ) -> NodeSnapshot | None:
        """The node's snapshot: its last one when nothing it is made from changed. None when
        its config cannot be built (it keeps its current one; the error is logged)."""
        assert self.snapshot is not None, "advance() first"
        last = self._nodes.get(node_id)
        held = tuple(secrets.values())
        mesh = self.snapshot
        dataplane = mesh.dataplane(name)
        proxy = None
        if dataplane is None:
            inputs: tuple[Any, ...] = _GONE
        else:
            metadata = metadata or _NO_METADATA
            choices = self._choices_of(dataplane)
            proxy = Proxy(mesh, dataplane, self.parts, metadata, choices, self.mtls)
            inputs = proxy.inputs()
        if last is not None and last.inputs == inputs and _same(last.secrets, held):
            self.stats.unchanged += 1
            return last.snapshot
        try:
            layers = layers_of(proxy) if proxy is not None else ()
        except GenerationError as exc:
            log.error("cannot generate config for %s: %s; it keeps its current one", node_id, exc)
            return None
        snapshot = self._snapshot_of(layers, secrets)
        self._nodes[node_id] = _Built(inputs, held, snapshot)
        self.stats.generated += 1
        return snapshot

    def _choices_of(self, dataplane: Resource) -> Choices:
        assert self.snapshot is not None
        shape = self.parts.build(Shape.of, dataplane)
        choices = self._choices.get(shape)
        if choices is None:
            choices = self._choices[shape] = choose(shape, self.snapshot, self.parts)
        return choices

    def _snapshot_of(
        self, layers: tuple[ProxyConfig, ...], secrets: Mapping[str, Message]
    ) -> NodeSnapshot:
        found: dict[str, list[Mapping[str, Message]]] = {}
        for layer in layers:
            for type_url, resources in layer.present:
                found.setdefault(type_url, []).append(resources)
        # A type no layer has is left out: its answer is the empty one (NodeSnapshot.of).
        answer, make = self.packer.answer_of, self._shared_type
        types = {url: answer(tuple(found[url]), make) for url in TYPE_URLS if url in found}
        if secrets:
            # The node's own identity, held by no part: its answer is found by its messages.
            merged = {k: m for d in (*found.get(SECRET, ()), secrets) for k, m in d.items()}
            types[SECRET] = self.packer.answer(merged, make)
        return NodeSnapshot(types)


def _same(a: tuple[Message, ...], b: tuple[Message, ...]) -> bool:
    # The identity manager hands out a secret's message until it changes it; an equal copy
    # costs a new snapshot, never a wrong one.
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
