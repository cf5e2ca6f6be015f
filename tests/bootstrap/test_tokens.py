"""Dataplane tokens: issue/verify, expiry, a key that survives deleting Mesh `default`, and
exactly one key when several processes start at once."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kuma import tokens
from kuma.errors import UnauthorizedError
from kuma.store import MemoryStore


def test_issue_and_verify_with_a_store_or_a_key():
    store = MemoryStore()
    token = tokens.issue(store, "default", "backend-1")
    claims = tokens.verify(store, token, "default", "backend-1")
    assert (claims.mesh, claims.name, claims.expires_at) == ("default", "backend-1", None)

    key = Ed25519PrivateKey.generate()
    other = tokens.issue(key, "demo", "web-1", ttl=60)
    assert tokens.verify(key.public_key(), other, "demo", "web-1").expires_at is not None
    with pytest.raises(UnauthorizedError, match="invalid"):  # signed by a different key
        tokens.verify(store, other, "demo", "web-1")


@pytest.mark.parametrize(
    ("mesh", "name", "message"),
    [
        ("default", "redis-1", "proxy name from requestor: redis-1 is different than in token"),
        ("other", "backend-1", "proxy mesh from requestor: other is different than in token"),
    ],
)
def test_a_token_opens_only_its_own_dataplane(mesh, name, message):
    store = MemoryStore()
    token = tokens.issue(store, "default", "backend-1")
    with pytest.raises(UnauthorizedError, match=message) as caught:
        tokens.verify(store, token, mesh, name)
    assert caught.value.http_status == 401


def test_expired_missing_and_garbage_tokens():
    store = MemoryStore()
    expired = tokens.issue(store, "default", "dp", ttl=-1)
    with pytest.raises(UnauthorizedError, match="expired"):
        tokens.verify(store, expired, "default", "dp")
    with pytest.raises(UnauthorizedError, match="missing"):
        tokens.verify(store, "", "default", "dp")
    with pytest.raises(UnauthorizedError, match="invalid"):
        tokens.verify(store, "a.b.c", "default", "dp")


def test_no_key_yet_means_no_valid_token():
    with pytest.raises(UnauthorizedError, match="no signing key"):
        tokens.verify(MemoryStore(), "a.b.c", "default", "dp")


def test_deleting_mesh_default_keeps_the_key():
    from kuma.config import load_config
    from kuma.wiring import ensure_default_mesh, open_core

    cfg = load_config(env={})
    core = open_core(cfg)
    try:
        ensure_default_mesh(cfg, core.manager)
        token = tokens.issue(core.store, "default", "backend-1")
        core.manager.delete("Mesh", "default", "default")
        ensure_default_mesh(cfg, core.manager)
        assert tokens.verify(core.store, token, "default", "backend-1").name == "backend-1"
    finally:
        core.close()


def test_concurrent_first_starts_share_one_key():
    store = MemoryStore()
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: tokens.ensure_signing_key(store), range(32)))
    raw = {k.public_key().public_bytes_raw() for k in keys}
    assert len(raw) == 1


def _ensure_in_process(dsn: str, start_at: float) -> bytes:
    from kuma.store import PostgresStore

    store = PostgresStore(dsn, min_size=1, max_size=1, timeout=10.0)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        return tokens.ensure_signing_key(store).public_key().public_bytes_raw()
    finally:
        store.close()


def test_processes_racing_on_postgres_share_one_key(own_pg_database):
    from kuma.store import migrate

    dsn = " ".join(f"{k}={v}" for k, v in own_pg_database.items())
    migrate.migrate(dsn)
    start_at = time.time() + 1.5  # every process past its imports, then all at once
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        keys = pool.starmap(_ensure_in_process, [(dsn, start_at)] * 4)
    assert len(set(keys)) == 1
