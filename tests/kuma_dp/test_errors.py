"""kuma-dp's error paths, each run as the real console script: the message and exit status 1."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kuma import tokens
from tests.apply import apply
from tests.bootstrap.servers import dataplane
from tests.kuma_dp.harness import clean_env, run_dp, serve_catalog

pytestmark = pytest.mark.slow

NO_ADMIN = ("--admin-port", "-")


def _token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / "token"
    path.write_text(token)
    return str(path)


def test_missing_dataplane(bootstrap, tmp_path):
    token = _token_file(tmp_path, tokens.issue(bootstrap.core.store, "default", "ghost"))
    status, err = run_dp(
        "--name", "ghost", "--cp-address", bootstrap.url, "--dataplane-token-file", token, *NO_ADMIN
    )
    assert status == 1
    assert "status: 404. Did you first apply a Dataplane resource?" in err


def test_wrong_token(bootstrap, tmp_path):
    apply(bootstrap.core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
    apply(bootstrap.core, dataplane("redis-1", "redis", "127.0.0.1:10002:6379"))
    foreign = _token_file(tmp_path, tokens.issue(bootstrap.core.store, "default", "redis-1"))
    status, err = run_dp(
        "--name",
        "backend-1",
        "--cp-address",
        bootstrap.url,
        "--dataplane-token-file",
        foreign,
        *NO_ADMIN,
    )
    assert status == 1
    assert "rejected the dataplane token" in err
    assert "proxy name from requestor: backend-1 is different than in token: redis-1" in err


def test_no_token_when_the_catalog_requires_one(bootstrap):
    catalog = serve_catalog(bootstrap.url, token_api=True)
    try:
        status, err = run_dp("--name", "backend-1", "--cp-address", catalog.url, *NO_ADMIN)
    finally:
        catalog.stop()
    assert status == 1
    assert "the Dataplane Token is required" in err
    assert "--dataplane-token-file=/path/file" in err


def test_empty_token_file(bootstrap, tmp_path):
    status, err = run_dp(
        "--name",
        "backend-1",
        "--cp-address",
        bootstrap.url,
        "--dataplane-token-file",
        _token_file(tmp_path, ""),
        *NO_ADMIN,
    )
    assert status == 1 and "is empty" in err


def test_unreachable_control_plane():
    status, err = run_dp("--name", "backend-1", "--cp-address", "http://127.0.0.1:1", *NO_ADMIN)
    assert status == 1
    assert "could not reach the control plane at http://127.0.0.1:1/catalog" in err


def test_missing_envoy():
    status, err = run_dp("--name", "backend-1", "--binary-path", "/nonexistent/envoy", *NO_ADMIN)
    assert status == 1
    assert "Envoy binary not found at '/nonexistent/envoy'" in err


def test_missing_name_seed_env_form():
    env = clean_env(KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL="http://127.0.0.1:1")
    status, err = run_dp(env=env)
    assert status == 1 and ".Name must be non-empty" in err


def test_bad_admin_port_range():
    status, err = run_dp("--name", "x", "--admin-port", "9000-80")
    assert status == 1 and "invalid admin port range" in err


def test_envoy_failure_is_kuma_dp_failure(tmp_path):
    """When Envoy dies, kuma-dp exits with Envoy's status (here a stand-in that exits 7)."""
    from tests.bootstrap.servers import make_config, served

    fake = tmp_path / "envoy"
    fake.write_text("#!/bin/sh\necho fake envoy failing >&2\nexit 7\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with served(make_config(token=False)) as server:
        apply(server.core, dataplane("backend-1", "backend", "127.0.0.1:10001:8080"))
        env = clean_env(
            KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL=server.url,
            KUMA_DATAPLANE_NAME="backend-1",
            KUMA_DATAPLANE_MESH="default",
        )
        status, err = run_dp("--binary-path", str(fake), *NO_ADMIN, env=env)
    assert status == 7
    assert "fake envoy failing" in err and "Envoy exited with status 7" in err
