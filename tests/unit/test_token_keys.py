"""Dataplane token keys (kuma/tokens.py): `kid`s, the public-key record, rotation with an overlap,
retirement, migration from a store of before the record, races, and the verifiers' key cache."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kuma import tokens
from kuma.config import autoconfigure, load_config
from kuma.dataplane_auth import DataplaneAuthenticator
from kuma.errors import ConfigError, ConflictError, UnauthorizedError
from kuma.resources.base import Resource
from kuma.resources.registry import SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.memory import MemoryStore


def kid(token: str) -> str | None:
    return jwt.get_unverified_header(token).get("kid")


def record(store: MemoryStore) -> list[dict[str, Any]]:
    found = store.get(SECRET, tokens.SIGNING_KEY_MESH, tokens.PUBLIC_KEYS_NAME)
    return list(json.loads(bytes(found.spec.data))["keys"])


def old_store() -> tuple[MemoryStore, Ed25519PrivateKey]:
    """A store as the code before key ids left it: the private key's Secret alone."""
    store = MemoryStore()
    key = Ed25519PrivateKey.generate()
    pem = tokens._to_pem(key)
    spec = SecretSpec(data=pem)
    store.create(Resource(SECRET, tokens.SIGNING_KEY_MESH, tokens.SIGNING_KEY_NAME, spec))
    return store, key


def legacy_token(key: Ed25519PrivateKey, ttl: int | None = None) -> str:
    """A token as the code before key ids signed it: no `kid` in its header."""
    claims: dict[str, Any] = {"Mesh": "default", "Name": "dp", "iat": int(time.time())}
    if ttl is not None:
        claims["exp"] = claims["iat"] + ttl
    return jwt.encode(claims, key, algorithm="EdDSA")


def test_tokens_name_their_key_and_the_record_has_public_halves_only():
    store = MemoryStore()
    key = tokens.ensure_signing_key(store)
    token = tokens.issue(store, "default", "dp")
    assert kid(token) == tokens.key_id(key)
    assert tokens.verify(store, token, "default", "dp").name == "dp"
    (jwk,) = record(store)
    assert jwk["kid"] == tokens.key_id(key)
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert tokens._unb64url(jwk["x"]) == key.public_key().public_bytes_raw()
    assert "d" not in jwk and "acceptsTokensWithoutKid" not in jwk
    raw = bytes(store.get(SECRET, "kuma.system", tokens.PUBLIC_KEYS_NAME).spec.data)
    assert tokens._b64url(key.private_bytes_raw()).encode() not in raw
    # RFC 7638's example thumbprint shape: 43 base64url characters of a SHA-256
    assert len(jwk["kid"]) == 43


def test_rotation_overlaps_until_retirement():
    store = MemoryStore()
    old = tokens.issue(store, "default", "dp")
    new_kid = tokens.rotate_signing_key(store)
    new = tokens.issue(store, "default", "dp")
    assert kid(new) == new_kid != kid(old)
    for token in (old, new):
        tokens.verify(store, token, "default", "dp")
    assert tokens.retire_signing_keys(store) == [kid(old)]
    with pytest.raises(UnauthorizedError, match="unknown or retired"):
        tokens.verify(store, old, "default", "dp")
    tokens.verify(store, new, "default", "dp")
    assert tokens.retire_signing_keys(store) == []  # nothing older left


def test_retirement_refuses_the_signing_key_and_newer_or_unknown_ones():
    store = MemoryStore()
    first = tokens.key_id(tokens.ensure_signing_key(store))
    second = tokens.rotate_signing_key(store)
    third = tokens.rotate_signing_key(store)
    with pytest.raises(tokens.TokenKeyError, match="current signing key"):
        tokens.retire_signing_keys(store, [third])
    with pytest.raises(tokens.TokenKeyError, match="no token signing key"):
        tokens.retire_signing_keys(store, ["made-up"])
    assert tokens.retire_signing_keys(store, [second]) == [second]  # only the one named
    assert [k["kid"] for k in record(store)] == [first, third]


def test_a_rotation_under_way_is_not_retired():
    """A rotation appends its key before it signs with it: a retirement in between keeps it."""
    store = MemoryStore()
    signing = tokens.key_id(tokens.ensure_signing_key(store))
    pending = tokens._entry(Ed25519PrivateKey.generate().public_key())
    tokens._add_public(store, pending)  # step one of a concurrent rotation
    assert tokens.retire_signing_keys(store) == []
    with pytest.raises(tokens.TokenKeyError, match="newer than the signing key"):
        tokens.retire_signing_keys(store, [pending.kid])
    assert [k["kid"] for k in record(store)] == [signing, pending.kid]


def test_concurrent_rotations_leave_one_signing_key_known_to_verifiers():
    store = MemoryStore()
    first = tokens.issue(store, "default", "dp")

    def rotate(_: int) -> str | None:
        try:
            return tokens.rotate_signing_key(store)
        except ConflictError:
            return None

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(rotate, range(16)))
    winners = [r for r in results if r is not None]
    assert winners  # at least one went through; the others changed nothing
    signing = tokens.key_id(tokens.ensure_signing_key(store))
    assert signing in winners
    kids = [k["kid"] for k in record(store)]
    assert kids[0] == kid(first) and signing in kids
    assert set(kids) <= {kid(first), *winners}  # a loser's key is taken back out
    tokens.verify(store, tokens.issue(store, "default", "dp"), "default", "dp")
    tokens.verify(store, first, "default", "dp")


def test_a_store_from_before_key_ids_migrates_and_old_tokens_work_until_retired():
    store, key = old_store()
    before = legacy_token(key)
    assert kid(before) is None
    # a verifier, first: it derives the public record (only the public half)
    auth = DataplaneAuthenticator(store, enabled=True)
    auth.check("default", "dp", before)
    (jwk,) = record(store)
    assert jwk["kid"] == tokens.key_id(key) and jwk["acceptsTokensWithoutKid"] is True
    # the same key keeps signing, now with its kid; both token forms verify
    after = tokens.issue(store, "default", "dp")
    assert kid(after) == tokens.key_id(key)
    tokens.verify(store, after, "default", "dp")
    # rotate: the kid-less token still works (the old key is still accepted) ...
    tokens.rotate_signing_key(store)
    tokens.verify(store, before, "default", "dp")
    # ... until that key is retired
    tokens.retire_signing_keys(store)
    with pytest.raises(UnauthorizedError, match="names no signing key"):
        tokens.verify(store, before, "default", "dp")


def test_a_kidless_token_of_another_key_is_refused():
    store, _ = old_store()
    forged = legacy_token(Ed25519PrivateKey.generate())
    with pytest.raises(UnauthorizedError, match="invalid"):
        tokens.verify(store, forged, "default", "dp")


def test_a_fresh_store_accepts_no_kidless_token():
    store = MemoryStore()
    key = tokens.ensure_signing_key(store)
    with pytest.raises(UnauthorizedError, match="names no signing key"):
        tokens.verify(store, legacy_token(key), "default", "dp")


def test_bootstrap_migrates_without_generating_a_key():
    """What verifiers run at start: the record from an old private key, and never a new key."""
    empty = MemoryStore()
    assert tokens.ensure_public_keys(empty) is None
    assert empty.list(SECRET).items == []
    store, key = old_store()
    keys = tokens.ensure_public_keys(store)
    assert keys is not None and [k.kid for k in keys.keys] == [tokens.key_id(key)]


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, type_: str, mesh: str, name: str) -> Resource:
        self.reads += 1
        return super().get(type_, mesh, name)


def test_verifiers_read_the_store_once_per_cache_interval():
    store = CountingStore()
    token = tokens.issue(store, "default", "dp")
    auth = DataplaneAuthenticator(store, enabled=True)
    store.reads = 0
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: auth.check("default", "dp", token), range(1000)))
    intervals = (time.monotonic() - started) // tokens.KEY_CACHE_SECONDS
    assert store.reads == 1 + intervals  # 1 on a quiet machine: 1,000 streams, one read
    store.reads = 0
    # tokens naming made-up keys re-read the record at most every UNKNOWN_KID_REFRESH_SECONDS
    forged = tokens.issue(Ed25519PrivateKey.generate(), "default", "dp")
    started = time.monotonic()
    for _ in range(200):
        with pytest.raises(UnauthorizedError):
            auth.check("default", "dp", forged)
    elapsed = time.monotonic() - started
    assert store.reads <= 1 + elapsed / tokens.UNKNOWN_KID_REFRESH_SECONDS


def test_a_key_rotated_in_is_known_at_once_and_a_retired_one_gone_after_the_cache():
    store = MemoryStore()
    old = tokens.issue(store, "default", "dp")
    auth = DataplaneAuthenticator(store, enabled=True, key_cache_seconds=1.0)
    auth.check("default", "dp", old)
    tokens.rotate_signing_key(store)
    new = tokens.issue(store, "default", "dp")
    time.sleep(tokens.UNKNOWN_KID_REFRESH_SECONDS)
    auth.check("default", "dp", new)  # an unknown kid re-reads the record
    tokens.retire_signing_keys(store)
    auth.check("default", "dp", old)  # still cached
    time.sleep(1.0)
    with pytest.raises(UnauthorizedError, match="unknown or retired"):
        auth.check("default", "dp", old)


def test_the_default_lifetime_setting():
    cfg = load_config(env={})
    assert cfg.admin_server.apis.dataplane_token.default_valid_for == timedelta(days=365)
    env = {"KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_DEFAULT_VALID_FOR": "720h"}
    assert load_config(env=env).admin_server.apis.dataplane_token.default_valid_for == (
        timedelta(days=30)
    )
    with pytest.raises(ConfigError, match="DefaultValidFor cannot be negative"):
        load_config(env={"KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_DEFAULT_VALID_FOR": "-1h"})
    # the deprecated dataplaneTokenServer section does not reset it
    env |= {"KUMA_DATAPLANE_TOKEN_SERVER_ENABLED": "false"}
    token_api = autoconfigure(load_config(env=env)).admin_server.apis.dataplane_token
    assert (token_api.enabled, token_api.default_valid_for) == (False, timedelta(days=30))


def test_concurrent_first_starts_leave_one_key_in_the_record():
    store = MemoryStore()
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: tokens.ensure_signing_key(store), range(32)))
    assert {tokens.key_id(k) for k in keys} == {k["kid"] for k in record(store)}
    assert len(record(store)) == 1
