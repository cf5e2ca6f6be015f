"""Dataplane tokens (spec §9.4, done properly): who may get a Dataplane's bootstrap and identity.

A token is a JWT signed with **Ed25519** (`EdDSA`): the control plane signs, and whoever verifies
needs only the public half. Claims: `Mesh` and `Name` (Kuma's capitalised keys), `iat`, and `exp`
when a TTL is given. There is no revocation list: rotating the key (deleting the Secret and
restarting) invalidates every token.

Where the key lives: a Secret named `dataplane-token-signing-key` in the reserved mesh
`kuma.system` (value: the PKCS#8 PEM of the private key). `kuma.system` can never be a Mesh (mesh
names cannot contain dots, spec §3.1), so deleting Mesh `default` never cascades to the key and
never invalidates every token, unlike Kuma 0.3 (spec §16.2), which kept it in mesh `default`.

The key is created at first start by whichever process gets there first; concurrent starters are
settled by the store's unique (type, mesh, name) key: the losers read the winner's key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kuma.errors import AlreadyExistsError, ForbiddenError, NotFoundError, UnauthorizedError
from kuma.resources.base import Resource
from kuma.resources.registry import SECRET
from kuma.resources.secret import SecretSpec
from kuma.store.base import ResourceStore

SIGNING_KEY_MESH = "kuma.system"
SIGNING_KEY_NAME = "dataplane-token-signing-key"
ALGORITHM = "EdDSA"

KeySource = ResourceStore | Ed25519PrivateKey | Ed25519PublicKey


@dataclass(frozen=True, slots=True)
class TokenClaims:
    mesh: str
    name: str
    expires_at: int | None = None


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


def _stored_key(store: ResourceStore) -> Ed25519PrivateKey | None:
    try:
        found = store.get(SECRET, SIGNING_KEY_MESH, SIGNING_KEY_NAME)
    except NotFoundError:
        return None
    return _parse_private_pem(bytes(found.spec.data))


def ensure_signing_key(store: ResourceStore) -> Ed25519PrivateKey:
    """The stored signing key; generated and stored first when there is none."""
    existing = _stored_key(store)
    if existing is not None:
        return existing
    key = Ed25519PrivateKey.generate()
    secret = Resource(
        type=SECRET,
        mesh=SIGNING_KEY_MESH,
        name=SIGNING_KEY_NAME,
        spec=SecretSpec(data=_to_pem(key)),
    )
    try:
        store.create(secret)
    except AlreadyExistsError:
        winner = _stored_key(store)
        assert winner is not None
        return winner
    return key


def _private_key(source: KeySource) -> Ed25519PrivateKey:
    if isinstance(source, Ed25519PrivateKey):
        return source
    if isinstance(source, Ed25519PublicKey):
        raise TypeError("issuing a token needs the private signing key")
    return ensure_signing_key(source)


def _public_key(source: KeySource) -> Ed25519PublicKey:
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        return source.public_key()
    key = _stored_key(source)
    if key is None:  # nothing was ever signed, so no token can be valid
        raise UnauthorizedError("dataplane token is invalid: no signing key has been generated")
    return key.public_key()


def issue(source: KeySource, mesh: str, name: str, ttl: float | None = None) -> str:
    """A token for Dataplane `name` in `mesh`, valid for `ttl` seconds (None: no expiry)."""
    if not mesh or not name:
        raise ValueError("a dataplane token needs a mesh and a name")
    now = int(time.time())
    claims: dict[str, Any] = {"Mesh": mesh, "Name": name, "iat": now}
    if ttl is not None:
        claims["exp"] = now + int(ttl)
    return jwt.encode(claims, _private_key(source), algorithm=ALGORITHM)


def decode(source: KeySource, token: str) -> TokenClaims:
    """The claims of a token whose signature and expiry hold; UnauthorizedError otherwise."""
    if not token:
        raise UnauthorizedError("dataplane token is missing")
    try:
        claims = jwt.decode(
            token.strip(),
            _public_key(source),
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
