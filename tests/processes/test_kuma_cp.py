"""`kuma-cp` as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ports import cp_ports

pytestmark = pytest.mark.slow

KUMA_CP = [sys.executable, "-c", "from services.cp.main import cli; cli()"]


def cp_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env.update(cp_ports())
    env.update(extra)
    return env


def run_until_started(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*KUMA_CP, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "created Mesh 'default'" in line:
            proc.seen = seen  # type: ignore[attr-defined]
            return proc
    proc.kill()
    pytest.fail("kuma-cp run did not create the default Mesh:\n" + "".join(seen))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_creates_default_mesh_and_stops_cleanly(sig):
    proc = run_until_started(cp_env())
    try:
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "stopped Control Plane" in out


def test_run_logs_config_with_password_masked():
    proc = run_until_started(cp_env(KUMA_STORE_POSTGRES_PASSWORD="s3cret-pw"))
    try:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    text = "".join(proc.seen) + out  # type: ignore[attr-defined]
    assert "Current config" in text
    assert "s3cret-pw" not in text
    assert '"password": "*****"' in text


def test_invalid_config_is_a_clear_error():
    res = subprocess.run(
        [*KUMA_CP, "run"],
        env=cp_env(KUMA_XDS_SERVER_GRPC_PORT="-1"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1
    assert "Invalid configuration: Xds Server validation failed: GrpcPort cannot be negative" in (
        res.stderr
    )


def test_missing_config_file():
    res = subprocess.run(
        [*KUMA_CP, "run", "-c", "/nonexistent.yaml"],
        env=cp_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1
    assert 'Failed to access configuration file "/nonexistent.yaml"' in res.stderr


def test_version_and_help():
    res = subprocess.run(
        [*KUMA_CP, "version", "--detailed"], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0
    assert [line.split(":")[0] for line in res.stdout.splitlines()] == [
        "Version",
        "Git Tag",
        "Git Commit",
        "Build Date",
    ]
    res = subprocess.run(KUMA_CP, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "run" in res.stdout and "migrate" in res.stdout


def pg_env(pg_database: dict[str, str], **extra: str) -> dict[str, str]:
    return cp_env(
        KUMA_STORE_TYPE="postgres",
        KUMA_STORE_POSTGRES_HOST=pg_database["host"],
        KUMA_STORE_POSTGRES_PORT=pg_database["port"],
        KUMA_STORE_POSTGRES_USER=pg_database["user"],
        KUMA_STORE_POSTGRES_PASSWORD="unused-with-trust-auth",
        KUMA_STORE_POSTGRES_DB_NAME=pg_database["dbname"],
        **extra,
    )


def test_migrate_then_run_on_postgres(own_pg_database):
    from kuma.store import PostgresStore

    env = pg_env(own_pg_database)
    first = subprocess.run(
        [*KUMA_CP, "migrate", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        [*KUMA_CP, "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.stdout.strip() == "the schema is up to date"
    proc = run_until_started(env)
    try:
        proc.terminate()
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    store = PostgresStore(" ".join(f"{k}={v}" for k, v in own_pg_database.items()))
    try:
        assert [r.name for r in store.list("Mesh").items] == ["default"]
    finally:
        store.close()


def test_migrate_refuses_memory_store():
    res = subprocess.run(
        [*KUMA_CP, "migrate"], env=cp_env(), capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 1
    assert "postgres store only" in res.stderr


def test_kuma_xds_without_its_store_says_so_in_one_line() -> None:
    """A replica started before its Postgres is reachable exits with the store's message, as
    kuma-api does, not with a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env |= {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_PORT": "9"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kuma-xds")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: Postgres store unavailable"), done.stderr
    assert "Traceback" not in done.stderr
