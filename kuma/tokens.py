"""Dataplane tokens (spec §9.4, done properly): who may get a Dataplane's bootstrap and identity.

A token is a JWT signed with **Ed25519** (`EdDSA`). Claims: `Mesh` and `Name` (Kuma's capitalised
keys), `iat`, and `exp` when a lifetime is given (the API applies
`adminServer.apis.dataplaneToken.defaultValidFor` when the caller asks none). Its header names the
signing key: `kid` is the key's RFC 7638 JWK thumbprint. There is no revocation list: retiring a
key (below) refuses every token it signed.

Two records, both Secrets in the reserved mesh `kuma.system` (it can never be a Mesh: mesh names
cannot contain dots, spec §3.1, so deleting Mesh `default` never cascades to them, unlike Kuma
0.3, spec §16.2, which kept the key in mesh `default`):
- `dataplane-token-signing-key`: the PKCS#8 PEM of the **current private key**. Only what mints
  tokens reads it (the API's `POST /tokens`, the commands below, start-up defaults).
- `dataplane-token-public-keys`: a JWKS (`{"keys": [JWK, ...]}`), the **public** halves of every
  key whose tokens are accepted, oldest first; each JWK adds `createdAt` and, for the key that
  existed before keys had ids, `acceptsTokensWithoutKid` (tokens signed before this design have
  no `kid`). Verifiers (bootstrap, xDS) read only this record. A verifier that finds no record
  but a private key (a store written before the record existed) derives the record once and
  stores it: that migration is the only time a verifier looks at the private key's Secret.

Rotation with an overlap (`kuma-cp rotate-token-key`): a new key is appended to the public record
first, then it replaces the private key, so no token is ever signed with a key verifiers do not
know. Tokens of older keys stay valid until their own `exp` or until `kuma-cp retire-token-key`
drops the keys older than the current one. Every write carries the version it read (the store's
optimistic check): a rotation that loses a race to another changes nothing, a retirement only
ever drops keys older than the signing key it saw, so it cannot drop a key a concurrent rotation
is about to sign with.

The first key is created by whichever process gets there first; concurrent starters are settled by
the store's unique (type, mesh, name) key: the losers read the winner's key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kuma.errors import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    KumaError,
    NotFoundError,
    UnauthorizedError,
)
from kuma.resources.base import Resource
from kuma.resources.registry import SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.base import ResourceStore

SIGNING_KEY_MESH = "kuma.system"
SIGNING_KEY_NAME = "dataplane-token-signing-key"
PUBLIC_KEYS_NAME = "dataplane-token-public-keys"
ALGORITHM = "EdDSA"
# How long a verifier trusts the public keys it read: one store read per interval, however many
# streams open; a retired key is refused everywhere at most this long after its retirement.
KEY_CACHE_SECONDS = 5.0
# A token naming a key the cache does not know makes it re-read the record (a key rotated in
# moments ago), at most this often.
UNKNOWN_KID_REFRESH_SECONDS = 0.5
_WRITE_ATTEMPTS = 8


class TokenKeyError(KumaError):
    """A key operation that cannot be done as asked (retiring the signing key, an unknown id)."""

    http_status = 400
    details = "Invalid token key operation"

    def __init__(self, message: str) -> None:
        self.details = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    mesh: str
    name: str
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class PublicKey:
    kid: str
    key: Ed25519PublicKey
    created_at: str = ""
    accepts_tokens_without_kid: bool = False


@dataclass(frozen=True, slots=True)
class KeySet:
    """The public-key record: keys oldest first, and the store version it was read at."""

    keys: tuple[PublicKey, ...]
    version: int = 0

    def find(self, kid: str | None) -> PublicKey | None:
        for entry in self.keys:
            if (entry.kid == kid) if kid is not None else entry.accepts_tokens_without_kid:
                return entry
        return None

    def index(self, kid: str) -> int:
        return [e.kid for e in self.keys].index(kid)


# --- encodings ---


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The key's `kid`: its RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    x = _b64url(public.public_bytes_raw())
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


@lru_cache(maxsize=8)
def _parse_private_pem(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("the dataplane token signing key is not an Ed25519 key")
    return key


def _to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(key: Ed25519PublicKey, accepts_tokens_without_kid: bool = False) -> PublicKey:
    return PublicKey(key_id(key), key, _now(), accepts_tokens_without_kid)


def encode_keys(keys: Iterable[PublicKey]) -> bytes:
    """The record's bytes: a JWKS of public keys (no private member, ever)."""
    jwks = []
    for entry in keys:
        jwk: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(entry.key.public_bytes_raw()),
            "kid": entry.kid,
            "alg": ALGORITHM,
            "use": "sig",
            "createdAt": entry.created_at,
        }
        if entry.accepts_tokens_without_kid:
            jwk["acceptsTokensWithoutKid"] = True
        jwks.append(jwk)
    return json.dumps({"keys": jwks}, indent=1).encode()


def decode_keys(data: bytes, version: int = 0) -> KeySet:
    parsed = json.loads(data)
    keys = []
    for jwk in parsed["keys"]:
        public = Ed25519PublicKey.from_public_bytes(_unb64url(jwk["x"]))
        keys.append(
            PublicKey(
                kid=key_id(public),  # derived, never trusted from the record
                key=public,
                created_at=str(jwk.get("createdAt", "")),
                accepts_tokens_without_kid=bool(jwk.get("acceptsTokensWithoutKid", False)),
            )
        )
    return KeySet(tuple(keys), version)


# --- the records ---


def _secret(name: str, data: bytes, version: int = 0) -> Resource:
    return Resource(
        type=SECRET, mesh=SIGNING_KEY_MESH, name=name, spec=SecretSpec(data=data), version=version
    )


def _read_private(store: ResourceStore) -> tuple[Ed25519PrivateKey, int] | None:
    try:
        found = store.get(SECRET, SIGNING_KEY_MESH, SIGNING_KEY_NAME)
    except NotFoundError:
        return None
    return _parse_private_pem(bytes(found.spec.data)), found.version


def read_public_keys(store: ResourceStore) -> KeySet | None:
    """The stored public-key record, as it is (None when there is none)."""
    try:
        found = store.get(SECRET, SIGNING_KEY_MESH, PUBLIC_KEYS_NAME)
    except NotFoundError:
        return None
    return decode_keys(bytes(found.spec.data), found.version)


def _write_public(store: ResourceStore, current: KeySet | None, keys: Iterable[PublicKey]) -> None:
    """Create the record, or update it at `current.version` (AlreadyExists/ConflictError)."""
    data = encode_keys(keys)
    if current is None:
        store.create(_secret(PUBLIC_KEYS_NAME, data))
    else:
        store.update(_secret(PUBLIC_KEYS_NAME, data, current.version))


def _add_public(store: ResourceStore, entry: PublicKey) -> KeySet:
    """Append `entry` to the record unless it is there; retried on concurrent writes."""
    for _ in range(_WRITE_ATTEMPTS):
        current = read_public_keys(store)
        if current is not None and current.find(entry.kid) is not None:
            return current
        try:
            _write_public(store, current, (*(current.keys if current else ()), entry))
        except (AlreadyExistsError, ConflictError, NotFoundError):
            continue
        found = read_public_keys(store)
        assert found is not None
        return found
    raise ConflictError(SECRET, SIGNING_KEY_MESH, PUBLIC_KEYS_NAME)


def ensure_public_keys(store: ResourceStore) -> KeySet | None:
    """The public-key record; derived from the private key and stored first when a store from
    before the record has one (then that key also accepts tokens without `kid`). None: no key
    was ever generated."""
    found = read_public_keys(store)
    if found is not None:
        return found
    private = _read_private(store)
    if private is None:
        return None
    return _add_public(store, _entry(private[0].public_key(), accepts_tokens_without_kid=True))


def ensure_signing_key(store: ResourceStore) -> Ed25519PrivateKey:
    """The current signing key; generated and stored first when there is none. Its public half
    is in the public-key record when this returns."""
    existing = _read_private(store)
    if existing is None:
        key = Ed25519PrivateKey.generate()
        ours = _entry(key.public_key())
        _add_public(store, ours)  # known to verifiers before any use
        try:
            store.create(_secret(SIGNING_KEY_NAME, _to_pem(key)))
        except AlreadyExistsError:
            # another process won: its key is the one, ours is taken back out of the record
            _drop_public(store, {ours.kid})
            winner = _read_private(store)
            assert winner is not None
            key = winner[0]
        else:
            return key
    else:
        key = existing[0]
    record = read_public_keys(store)
    if record is None or record.find(key_id(key)) is None:
        _add_public(store, _entry(key.public_key(), accepts_tokens_without_kid=record is None))
    return key


# --- rotation and retirement (kuma-cp rotate-token-key / retire-token-key) ---


def rotate_signing_key(store: ResourceStore) -> str:
    """Make a new key the signing key, keeping older keys' tokens valid; its `kid`.

    ConflictError when another rotation replaced the signing key meanwhile (nothing changed
    then: run it again if one rotation is not what you wanted)."""
    current = _read_private(store)
    if current is None:
        return key_id(ensure_signing_key(store))
    version = current[1]
    if read_public_keys(store) is None:  # a store from before the record: migrate first
        ensure_signing_key(store)
    new_key = Ed25519PrivateKey.generate()
    entry = _entry(new_key.public_key())
    _add_public(store, entry)
    try:
        store.update(_secret(SIGNING_KEY_NAME, _to_pem(new_key), version))
    except (ConflictError, NotFoundError):
        _drop_public(store, {entry.kid})
        raise ConflictError(SECRET, SIGNING_KEY_MESH, SIGNING_KEY_NAME) from None
    return entry.kid


def _drop_public(store: ResourceStore, kids: set[str]) -> None:
    for _ in range(_WRITE_ATTEMPTS):
        current = read_public_keys(store)
        if current is None or not any(current.find(k) for k in kids):
            return
        try:
            _write_public(store, current, [e for e in current.keys if e.kid not in kids])
            return
        except (ConflictError, NotFoundError):
            continue


def retire_signing_keys(store: ResourceStore, kids: Iterable[str] = ()) -> list[str]:
    """Drop public keys older than the signing key (all of them, or only `kids`): their tokens
    are refused from then on (by every verifier within KEY_CACHE_SECONDS). The retired ids.

    The signing key and keys newer than it (a rotation under way) are never dropped."""
    wanted = set(kids)
    for _ in range(_WRITE_ATTEMPTS):
        signing = _read_private(store)
        record = ensure_public_keys(store)
        if signing is None or record is None:
            if wanted:
                raise TokenKeyError(f"no token signing key {sorted(wanted)[0]} exists")
            return []
        signing_kid = key_id(signing[0])
        if record.find(signing_kid) is None:  # cannot happen after ensure_signing_key
            ensure_signing_key(store)
            continue
        older = record.keys[: record.index(signing_kid)]
        for kid in sorted(wanted):
            if kid == signing_kid:
                raise TokenKeyError(f"{kid} is the current signing key: rotate first")
            if record.find(kid) is None:
                raise TokenKeyError(f"no token signing key {kid} exists")
            if all(e.kid != kid for e in older):
                raise TokenKeyError(f"{kid} is newer than the signing key: it cannot be retired")
        retired = [e for e in older if not wanted or e.kid in wanted]
        if not retired:
            return []
        gone = {e.kid for e in retired}
        try:
            _write_public(store, record, [e for e in record.keys if e.kid not in gone])
        except ConflictError:
            continue
        return [e.kid for e in retired]
    raise ConflictError(SECRET, SIGNING_KEY_MESH, PUBLIC_KEYS_NAME)


def describe_keys(store: ResourceStore) -> tuple[KeySet | None, str | None]:
    """The public-key record and the signing key's id, for listing."""
    signing = _read_private(store)
    return read_public_keys(store), key_id(signing[0]) if signing else None


# --- verifying: what verifiers hold ---


class PublicKeyCache:
    """The public keys of a store, re-read at most every `ttl` seconds (one read serves every
    stream that opens meanwhile), or sooner when a token names a key it does not know."""

    def __init__(self, store: ResourceStore, ttl: float = KEY_CACHE_SECONDS) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._loaded_at = float("-inf")

    def keys(self, refresh: bool = False) -> KeySet | None:
        """The keys; `refresh`: the caller did not find its key there, re-read (rate-limited:
        tokens naming made-up keys cannot make every stream read the store)."""
        with self._lock:
            age = time.monotonic() - self._loaded_at
            if age >= self.ttl or (refresh and age >= UNKNOWN_KID_REFRESH_SECONDS):
                self._keys = ensure_public_keys(self.store)
                self._loaded_at = time.monotonic()
            return self._keys


KeySource = ResourceStore | PublicKeyCache | Ed25519PrivateKey | Ed25519PublicKey


def _private_key(source: KeySource) -> Ed25519PrivateKey:
    if isinstance(source, Ed25519PrivateKey):
        return source
    if isinstance(source, Ed25519PublicKey | PublicKeyCache):
        raise TypeError("issuing a token needs the private signing key")
    return ensure_signing_key(source)


def _stored_keys(source: ResourceStore | PublicKeyCache, kid: str | None) -> KeySet:
    if isinstance(source, PublicKeyCache):
        keys = source.keys()
        if keys is None or keys.find(kid) is None:
            keys = source.keys(refresh=True)
    else:
        keys = ensure_public_keys(source)
    if keys is None:  # nothing was ever signed, so no token can be valid
        raise UnauthorizedError("dataplane token is invalid: no signing key has been generated")
    return keys


def _verification_key(source: KeySource, kid: str | None) -> Ed25519PublicKey:
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        return source.public_key()
    entry = _stored_keys(source, kid).find(kid)
    if entry is None:
        if kid is None:
            raise UnauthorizedError("dataplane token is invalid: it names no signing key (kid)")
        raise UnauthorizedError("dataplane token is invalid: its signing key is unknown or retired")
    return entry.key


def issue(source: KeySource, mesh: str, name: str, ttl: float | None = None) -> str:
    """A token for Dataplane `name` in `mesh`, valid for `ttl` seconds (None: no expiry)."""
    if not mesh or not name:
        raise ValueError("a dataplane token needs a mesh and a name")
    now = int(time.time())
    claims: dict[str, Any] = {"Mesh": mesh, "Name": name, "iat": now}
    if ttl is not None:
        claims["exp"] = now + int(ttl)
    key = _private_key(source)
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": key_id(key)})


def decode(source: KeySource, token: str) -> TokenClaims:
    """The claims of a token whose signature and expiry hold; UnauthorizedError otherwise."""
    if not token:
        raise UnauthorizedError("dataplane token is missing")
    token = token.strip()
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as exc:
        if not isinstance(source, Ed25519PublicKey | Ed25519PrivateKey):
            _stored_keys(source, None)  # no key at all says so first
        raise UnauthorizedError(f"dataplane token is invalid: {exc}") from None
    if kid is not None and not isinstance(kid, str):
        raise UnauthorizedError("dataplane token is invalid: kid must be a string")
    try:
        claims = jwt.decode(
            token,
            _verification_key(source, kid),
            algorithms=[ALGORITHM],
            options={"require": ["Mesh", "Name"]},
        )
    except jwt.ExpiredSignatureError:
        raise UnauthorizedError("dataplane token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise UnauthorizedError(f"dataplane token is invalid: {exc}") from None
    mesh, name = claims["Mesh"], claims["Name"]
    if not isinstance(mesh, str) or not isinstance(name, str):
        raise UnauthorizedError("dataplane token is invalid: Mesh and Name must be strings")
    return TokenClaims(mesh=mesh, name=name, expires_at=claims.get("exp"))


def verify(source: KeySource, token: str, mesh: str, name: str) -> TokenClaims:
    """Check that `token` is valid and was issued to Dataplane `name` in `mesh` (spec §9.2)."""
    claims = decode(source, token)
    if claims.name != name:
        raise ForbiddenError(
            f"proxy name from requestor: {name} is different than in token: {claims.name}"
        )
    if claims.mesh != mesh:
        raise ForbiddenError(
            f"proxy mesh from requestor: {mesh} is different than in token: {claims.mesh}"
        )
    return claims
