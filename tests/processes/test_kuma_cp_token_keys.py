"""`kuma-cp token-keys`, `rotate-token-key` and `retire-token-key` as a user runs them: real
subprocesses on the Postgres store (and the memory store's refusal)."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from kuma import tokens
from kuma.errors import UnauthorizedError
from tests.processes.test_kuma_cp import KUMA_CP, cp_env, pg_env

pytestmark = pytest.mark.slow


def kuma_cp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUMA_CP, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", ["token-keys", "rotate-token-key", "retire-token-key"])
def test_the_memory_store_cannot_be_reached(command):
    res = kuma_cp(cp_env(), command)
    assert res.returncode == 1
    assert "memory store lives inside the running kuma-cp" in res.stderr
    assert "dataplane token keys" in res.stderr


def test_rotate_and_retire_on_postgres(own_pg_database):
    from kuma.store import PostgresStore, migrate

    dsn = " ".join(f"{k}={v}" for k, v in own_pg_database.items())
    migrate.migrate(dsn)
    env = pg_env(own_pg_database)
    store = PostgresStore(dsn)
    try:
        assert kuma_cp(env, "token-keys").stdout == ""  # nothing generated yet
        first = tokens.key_id(tokens.ensure_signing_key(store))
        old = tokens.issue(store, "default", "dp")

        # several operators at once: each rotation succeeds or says it lost, none breaks
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda _: kuma_cp(env, "rotate-token-key"), range(3)))
        assert all(r.returncode in (0, 1) for r in results), [r.stderr for r in results]
        assert any(r.returncode == 0 for r in results)
        for lost in (r for r in results if r.returncode == 1):
            assert "was changed concurrently" in lost.stderr
        signing = tokens.key_id(tokens.ensure_signing_key(store))
        listing = kuma_cp(env, "token-keys").stdout.splitlines()
        assert listing[0].startswith(first + "\t")
        assert [line for line in listing if line.endswith("\tsigning")] == [
            next(line for line in listing if line.startswith(signing))
        ]
        new = tokens.issue(store, "default", "dp")
        tokens.verify(store, old, "default", "dp")
        tokens.verify(store, new, "default", "dp")

        refused = kuma_cp(env, "retire-token-key", "--kid", signing)
        assert refused.returncode == 1 and "current signing key: rotate first" in refused.stderr
        retired = kuma_cp(env, "retire-token-key")
        assert retired.returncode == 0, retired.stderr
        assert retired.stdout.startswith("retired: " + first)
        assert kuma_cp(env, "token-keys").stdout.splitlines() == [
            next(line for line in listing if line.startswith(signing))
        ]
        with pytest.raises(UnauthorizedError, match="unknown or retired"):
            tokens.verify(store, old, "default", "dp")
        tokens.verify(store, new, "default", "dp")
        again = kuma_cp(env, "retire-token-key")
        assert again.stdout.startswith("no key older than the signing key")
    finally:
        store.close()
