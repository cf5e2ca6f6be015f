"""The worker's health file lives in a private directory (mode 0700, owned by the worker's
user), never at a predictable path in a shared /tmp."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kuma.config import load_config
from kuma.errors import ConfigError
from services.worker.health_file import default_health_file, health_file, private_health_file
from tests.worker.conftest import ROOT


def test_default_is_in_a_per_user_directory_not_in_tmp(tmp_path: Path) -> None:
    assert default_health_file({"XDG_RUNTIME_DIR": str(tmp_path)}) == str(
        tmp_path / "kuma-worker" / "health"
    )
    fallback = Path(default_health_file({}))
    assert fallback == Path.home() / ".cache" / "kuma-worker" / "health"
    assert not str(fallback).startswith(tempfile.gettempdir())
    assert health_file(load_config(env={}).worker, {}) == str(fallback)
    set_by_env = load_config(env={"KUMA_WORKER_HEALTH_FILE": "/x/y"}).worker
    assert health_file(set_by_env, {}) == "/x/y"


def test_missing_directory_is_created_private(tmp_path: Path) -> None:
    path = private_health_file(str(tmp_path / "run" / "kuma" / "health"))
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o1777])
def test_an_open_directory_is_refused(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(ConfigError, match="private directory"):
        private_health_file(str(shared / "health"))


def test_links_and_relative_paths_are_refused(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(private)
    with pytest.raises(ConfigError, match="symbolic link"):
        private_health_file(str(tmp_path / "link" / "health"))
    (private / "health").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="symbolic link"):
        private_health_file(str(private / "health"))
    with pytest.raises(ConfigError, match="absolute"):
        private_health_file("health")


def test_the_worker_refuses_to_start_with_a_shared_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env["KUMA_WORKER_HEALTH_FILE"] = str(shared / "health")
    done = subprocess.run(
        [sys.executable, "-m", "services.worker.main"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "mode 0777" in done.stderr and "private directory" in done.stderr
    assert not (shared / "health").exists()
