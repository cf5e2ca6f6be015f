"""Golden files: each `testdata/<case>.input.yaml` (resources, dataplane name, node metadata:
`adminPort`, `proxyless`) is generated, with the mesh's mTLS hook when its Mesh has mTLS on, and
compared with `testdata/<case>.golden.yaml`. `UPDATE_GOLDEN=1 pytest tests/unit/xds` rewrites the
goldens. tests/xds_ads/test_envoy_validate.py runs `envoy --mode validate` on every case."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from services.xds.generator import MeshSnapshot, ProxyConfig, ProxyMetadata, generate
from services.xds.generator.security import mesh_mtls
from tests.unit.xds.helpers import snapshot, to_yaml

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in TESTDATA.glob("*.input.yaml"))


class Case(NamedTuple):
    dataplane: str
    snapshot: MeshSnapshot
    config: ProxyConfig


def case_input(case: str) -> dict:
    return yaml.safe_load((TESTDATA / f"{case}.input.yaml").read_text())  # type: ignore[no-any-return]


def generate_case(case: str) -> Case:
    data = case_input(case)
    snap = snapshot(data["resources"])
    metadata = ProxyMetadata(
        admin_port=data.get("adminPort", 0), proxyless=data.get("proxyless", False)
    )
    config = generate(snap, data["dataplane"], metadata, mesh_mtls(snap))
    return Case(data["dataplane"], snap, config)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    actual = to_yaml(generate_case(case).config)
    golden = TESTDATA / f"{case}.golden.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(actual)
    assert golden.exists(), f"missing {golden.name}: run with UPDATE_GOLDEN=1"
    assert actual == golden.read_text()
