"""`kumactl version`, `kumactl completion`, `--log-level`."""

from __future__ import annotations

import pytest

from kuma import version as build
from tests.kumactl.conftest import ControlPlane, Kumactl, use


def test_version(kumactl: Kumactl):
    assert kumactl("version").stdout == build.version() + "\n"
    assert kumactl("version", "-a").stdout.startswith("Version:    ")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion(kumactl: Kumactl, shell: str):
    result = kumactl("completion", shell)
    assert result.exit_code == 0
    assert "_KUMACTL_COMPLETE" in result.stdout


def test_completion_of_an_unknown_shell(kumactl: Kumactl):
    assert kumactl("completion", "tcsh").exit_code == 2


def test_debug_logging_shows_requests(kumactl: Kumactl, shared_cp: ControlPlane, caplog):
    use(kumactl, shared_cp)
    with caplog.at_level("DEBUG", logger="kumactl"):
        assert kumactl("--log-level", "debug", "get", "meshes").exit_code == 0
    assert f"GET {shared_cp.url}/meshes" in caplog.text
