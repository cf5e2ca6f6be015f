"""Versions are the same in every process: two xDS replicas, or one restarted, holding the same
resources give every resource of every dataplane the same version (ads/cache.py). Each golden
case (testdata/*.input.yaml) is generated for every Dataplane in it, in processes with different
string hash seeds (set and dict-of-set orders) and memory layouts (protobuf map orders)."""

from __future__ import annotations

from tests.fresh_python import json_printed_by

_VERSIONS = """
import json
from services.xds.ads.cache import NodeSnapshot
from services.xds.generator import ProxyMetadata, generate
from services.xds.generator.security import mesh_mtls
from tests.unit.xds.helpers import snapshot
from tests.unit.xds.test_golden import CASES, case_input

# A protobuf map in a packed message (RBAC policies, one per permission) is ordered by a hash
# seeded per process unless packed deterministically: one more case, with many of them.
many = case_input("mtls_rbac")
many["resources"] += [
    {"type": "TrafficPermission", "mesh": "default", "name": f"allow-{i}",
     "sources": [{"match": {"service": f"client-{i}"}}],
     "destinations": [{"match": {"service": "backend"}}]}
    for i in range(12)
]
out = {}
for case in [*CASES, "many_permissions"]:
    data = many if case == "many_permissions" else case_input(case)
    snap = snapshot(data["resources"])
    metadata = ProxyMetadata(
        admin_port=data.get("adminPort", 0), proxyless=data.get("proxyless", False)
    )
    for dataplane in snap.dataplanes:
        config = generate(snap, dataplane.name, metadata, mesh_mtls(snap))
        node = NodeSnapshot.build(config.by_type_url())
        for url, answer in node.types.items():
            for name, packed in answer.resources.items():
                out[f"{case} {dataplane.name} {url} {name}"] = packed.version
print(json.dumps(out, sort_keys=True))
"""


def versions(seed: str) -> dict[str, str]:
    return json_printed_by(_VERSIONS, env={"PYTHONHASHSEED": seed})  # type: ignore[no-any-return]


def test_every_resource_has_one_version_in_every_process() -> None:
    runs = [versions(seed) for seed in ("1", "2", "3")]
    assert len(runs[0]) > 80  # every case's resources, not an empty run
    for other in runs[1:]:
        differ = sorted(k for k in runs[0] if runs[0][k] != other.get(k))
        assert not differ and other.keys() == runs[0].keys(), differ[:10]
