"""Generation alone: what the xDS engine's MeshBuild costs per dataplane for each change kind.

    python -m benchmarks.xds_generate [--dataplanes 1000] [--changes 10] [--kinds ...]
                                      [--repeat 3] [--profile KIND]

The mesh and the change kinds are benchmarks.change_kinds's. Per change: the store write, then
what one reconcile pass does for the mesh on this replica without streams: read the inputs
(`reconciler.load_inputs`), `advance`, `next_pass`, and `generate` for every dataplane, with
a fixed identity per dataplane under mTLS (signing is not measured here). The figure is CPU
microseconds per dataplane per change (process time, so other processes on the machine add
little), the median over the changes, and the median of `--repeat` runs. Collections happen as
in the xDS service (services/xds/quiet_gc.py): none during a pass, what it built frozen after:
automatic ones were charged to generation here and not in the service. No gRPC, no Envoy:
this is the part of benchmarks.xds_changes's ratio that generation owns, for comparing one
version of the engine with another. `--profile KIND` prints a cProfile of that kind's passes.
Writes benchmarks/results/xds_generate.json.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import time
from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf.message import Message

from benchmarks.change_kinds import KINDS, apply_to, dataplane, mesh
from benchmarks.xds_convergence import write_results
from kuma.config import load_config
from kuma.wiring import Core, open_core
from services.xds.ads.cache import NodeSnapshot
from services.xds.build import MeshBuild
from services.xds.generator.security import IDENTITY_CERT, MESH_CA, mesh_mtls
from services.xds.reconciler import load_inputs


def _secrets(n: int) -> list[dict[str, Message]]:
    # One identity per dataplane and one CA for all, as the identity manager hands them out.
    ca = secret_pb2.Secret(name=MESH_CA)
    ca.validation_context.trusted_ca.inline_bytes = b"ca" * 400
    out = []
    for i in range(n):
        identity = secret_pb2.Secret(name=IDENTITY_CERT)
        identity.tls_certificate.certificate_chain.inline_bytes = b"%d" % i * 300
        out.append({IDENTITY_CERT: identity, MESH_CA: ca})
    return out


class World:
    def __init__(self, kind: str, n: int) -> None:
        self.kind = KINDS[kind]
        self.core: Core = open_core(load_config(env={}))
        self.apply("upsert", mesh(self.kind.mtls))
        for resource in (*self.kind.setup, *(dataplane(i) for i in range(n))):
            self.apply("upsert", resource)
        self.names = [f"dp-{i}" for i in range(n)]
        self.secrets = _secrets(n)
        self.build = MeshBuild(mesh_mtls)
        self.reconcile()  # every node's first config: not a change
        gc.collect()
        gc.freeze()

    def apply(self, op: str, resource: dict[str, Any]) -> None:
        apply_to(self.core.manager, op, resource)

    def reconcile(self) -> None:
        gc.disable()  # as QuietCollector.pass_begins / pass_ends
        try:
            self._reconcile()
        finally:
            gc.freeze()
            gc.enable()

    def _reconcile(self) -> None:
        loaded = load_inputs(self.core.store, "default")
        assert loaded is not None
        self.build.advance(*loaded)
        self.build.next_pass(len(self.names))
        on = self.build.mtls is not None
        for name, secrets in zip(self.names, self.secrets, strict=True):
            self.build.generate(f"default.{name}", name, None, secrets if on else {})

    def snapshots(self) -> dict[str, NodeSnapshot]:
        """Every node's current snapshot, by node id."""
        out = {}
        for name in self.names:
            snapshot = self.build.node_snapshot(f"default.{name}")
            assert snapshot is not None, name
            out[f"default.{name}"] = snapshot
        return out

    def close(self) -> None:
        self.core.close()
        gc.unfreeze()


def run_kind(kind: str, n: int, changes: int, profile: cProfile.Profile | None) -> list[float]:
    """CPU microseconds per dataplane of each change."""
    world = World(kind, n)
    try:
        out = []
        for k in range(changes):
            started = time.process_time()
            if profile is not None:
                profile.enable()
            for op, resource in world.kind.change(k):
                world.apply(op, resource)
            world.reconcile()
            if profile is not None:
                profile.disable()
            out.append((time.process_time() - started) / n * 1e6)
        return out
    finally:
        world.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataplanes", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--profile", default="", help="print a cProfile of this kind's passes")
    args = parser.parse_args()
    rows = []
    for kind in args.kinds.split(","):
        profile = cProfile.Profile() if kind == args.profile else None
        runs = [run_kind(kind, args.dataplanes, args.changes, profile) for _ in range(args.repeat)]
        medians = [statistics.median(r) for r in runs]
        row = {
            "kind": kind,
            "us_per_dataplane": round(statistics.median(medians), 1),
            "runs": [round(m, 1) for m in medians],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if profile is not None:
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    write_results("xds_generate", dataplanes=args.dataplanes, changes=args.changes, rows=rows)


if __name__ == "__main__":
    main()
