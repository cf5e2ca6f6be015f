"""The generator's output through the real Envoy (`envoy --mode validate`): every golden case
(tests/unit/xds/test_golden.py compares them with their goldens), the mTLS/RBAC hook's filters,
and a broken config, which shows the harness can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.xds.generator import generate
from tests.unit.xds.helpers import bootstrap, envoy_validate, snapshot
from tests.unit.xds.test_features import MESH, backend
from tests.unit.xds.test_golden import CASES, case_input, generate_case
from tests.unit.xds.test_security_hook import DOCS, DenyAllHook

pytestmark = pytest.mark.envoy


@pytest.mark.parametrize("case", CASES)
def test_envoy_accepts_the_golden_case(case: str, tmp_path: Path) -> None:
    """Unless the input says `envoyFails: <why>`: then Envoy must still refuse it, so that the
    day it accepts it the case is validated again."""
    name, snap, config = generate_case(case)
    dataplane = snap.dataplane(name)
    assert dataplane is not None
    boot = bootstrap(config, f"{snap.mesh.name}.{name}", dataplane.spec.service())
    result = envoy_validate(boot, tmp_path)
    if case_input(case).get("envoyFails"):
        assert result.returncode != 0, "Envoy accepts it now: drop envoyFails from the input"
    else:
        assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_accepts_the_security_hooks_filters(tmp_path: Path) -> None:
    config = generate(snapshot(DOCS), "backend-1", mtls=DenyAllHook())
    boot = bootstrap(config, "default.backend-1", "backend")
    # Envoy 1.40's validate mode crashes on a static cluster whose TLS takes its secrets over
    # ADS (there is no ADS there): validate where the RBAC filter landed, without that socket.
    for cluster in boot.static_resources.clusters:
        cluster.ClearField("transport_socket")
    assert envoy_validate(boot, tmp_path).returncode == 0


def test_envoy_validation_rejects_a_broken_config(tmp_path: Path) -> None:
    config = generate(snapshot([MESH, backend()]), "backend-1")
    boot = bootstrap(config, "default.backend-1", "backend")
    boot.static_resources.clusters[0].connect_timeout.seconds = -1
    assert envoy_validate(boot, tmp_path).returncode != 0
