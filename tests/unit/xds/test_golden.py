"""Golden files: each `testdata/<case>.input.yaml` (resources, dataplane name, node metadata) is
generated and compared with `testdata/<case>.golden.yaml`, and the result must pass
`envoy --mode validate`. `UPDATE_GOLDEN=1 pytest tests/unit/xds` rewrites the goldens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from services.xds.generator import MeshSnapshot, ProxyConfig, ProxyMetadata, generate
from tests.unit.xds.helpers import bootstrap, envoy_validate, snapshot, to_yaml

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in TESTDATA.glob("*.input.yaml"))


class Case(NamedTuple):
    dataplane: str
    snapshot: MeshSnapshot
    config: ProxyConfig


def generate_case(case: str) -> Case:
    data = yaml.safe_load((TESTDATA / f"{case}.input.yaml").read_text())
    snap = snapshot(data["resources"])
    metadata = ProxyMetadata(admin_port=data.get("adminPort", 0))
    return Case(data["dataplane"], snap, generate(snap, data["dataplane"], metadata))


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    actual = to_yaml(generate_case(case).config)
    golden = TESTDATA / f"{case}.golden.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(actual)
    assert golden.exists(), f"missing {golden.name}: run with UPDATE_GOLDEN=1"
    assert actual == golden.read_text()


@pytest.mark.parametrize("case", CASES)
def test_envoy_accepts(case: str, tmp_path: Path) -> None:
    name, snap, config = generate_case(case)
    dataplane = snap.dataplane(name)
    assert dataplane is not None
    boot = bootstrap(config, f"{snap.mesh.name}.{name}", dataplane.spec.service())
    result = envoy_validate(boot, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
