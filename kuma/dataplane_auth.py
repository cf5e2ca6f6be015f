"""Who may act as Dataplane (mesh, name): spec §9.2, shared by the bootstrap and xDS/SDS services.

- universal: the credential is a dataplane token (kuma.tokens) naming that mesh and name;
- kubernetes: the credential is the Pod's service-account token, which the Kubernetes API
  confirms through a TokenReview; its namespace must be the one the Dataplane name ends with
  (`{pod}.{namespace}`, as the injector names it);
- token checks off (`adminServer.apis.dataplaneToken.enabled: false`): anyone.

A caller on the control plane's own host may come without a credential when
`general.trustLoopback` is on (kuma-dp next to `kuma-cp run`, the seed's walk-through); a
credential that is presented is always checked.
"""

from __future__ import annotations

import functools
import json
import os
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kuma import tokens
from kuma.config import KumaCpConfig
from kuma.errors import ForbiddenError, StoreUnavailableError, UnauthorizedError
from kuma.tokens import KEY_CACHE_SECONDS, KeySource, PublicKeyCache

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_SERVICE_ACCOUNT = re.compile(r"^system:serviceaccount:(?P<namespace>[^:]+):(?P<name>[^:]+)$")


class TokenReviewer(Protocol):
    def review(self, token: str) -> str:
        """The authenticated username of `token`; UnauthorizedError when it is not."""
        ...


def check_service_account(username: str, dataplane_name: str) -> None:
    """Spec §9.2 (kubernetes): the token's identity is a service account of the namespace the
    Dataplane name ends with."""
    found = _SERVICE_ACCOUNT.match(username)
    if found is None:
        raise UnauthorizedError(
            f'authentication failed: "{username}" is not a service account '
            f"(system:serviceaccount:<namespace>:<name>)"
        )
    namespace = dataplane_name.rsplit(".", 1)[-1]
    if found["namespace"] != namespace:
        raise ForbiddenError(
            f"authentication failed: the token belongs to namespace {found['namespace']}, "
            f"Dataplane {dataplane_name} to namespace {namespace}"
        )


@dataclass(frozen=True)
class KubernetesTokenReviewer:
    """TokenReview (`authentication.k8s.io/v1`) against the Kubernetes API, with the control
    plane's own service-account credentials (in-cluster defaults)."""

    api_url: str
    ca_file: str
    credential_file: str
    timeout: float = 5.0

    @classmethod
    def in_cluster(cls) -> KubernetesTokenReviewer:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        return cls(
            f"https://{host}:{port}",
            str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            str(SERVICE_ACCOUNT_DIR / "token"),
        )

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        """Trusting the cluster's CA, loaded once (an OSError is not cached: retried)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def review(self, token: str) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        try:
            # Read each time: Kubernetes rotates the projected service-account token.
            credential = Path(self.credential_file).read_text().strip()
            context = self._tls
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read the Kubernetes credentials: {exc}") from exc
        request = urllib.request.Request(
            f"{self.api_url}/apis/authentication.k8s.io/v1/tokenreviews",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as answer:
                status = json.load(answer).get("status") or {}
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise StoreUnavailableError(f"TokenReview at {self.api_url} failed: {exc}") from exc
        if not status.get("authenticated"):
            reason = status.get("error") or "token not authenticated"
            raise UnauthorizedError(f"authentication failed: {reason}")
        return str((status.get("user") or {}).get("username", ""))


class DataplaneAuthenticator:
    """`keys`: a store is read through a PublicKeyCache (its public-key record only, re-read
    every `key_cache_seconds`): `check` runs at every stream open, and thousands of streams
    opening at once must not each read the store."""

    def __init__(
        self,
        keys: KeySource,
        enabled: bool = True,
        trust_loopback: bool = False,
        reviewer: TokenReviewer | None = None,
        key_cache_seconds: float = KEY_CACHE_SECONDS,
    ) -> None:
        if not isinstance(keys, PublicKeyCache | Ed25519PrivateKey | Ed25519PublicKey):
            keys = PublicKeyCache(keys, key_cache_seconds)
        self.keys: KeySource = keys
        self.enabled = enabled
        self.trust_loopback = trust_loopback
        self.reviewer = reviewer  # set: Kubernetes service-account tokens instead of ours

    def trusts(self, token: str, local: bool) -> bool:
        """Whether a caller is let in without any check: token checks off, or same-host trust
        for a local caller presenting no token."""
        return not self.enabled or (local and not token and self.trust_loopback)

    def check(self, mesh: str, name: str, token: str, local: bool = False) -> None:
        """Raise UnauthorizedError unless `token` lets its bearer act as Dataplane `name` of
        `mesh` (see the module docstring)."""
        if self.trusts(token, local):
            return
        if self.reviewer is None:
            tokens.verify(self.keys, token, mesh, name)
            return
        if not token:
            raise UnauthorizedError("authentication failed: k8s token is missing")
        check_service_account(self.reviewer.review(token), name)


def authenticator_for(cfg: KumaCpConfig, keys: KeySource) -> DataplaneAuthenticator:
    enabled = cfg.admin_server.apis.dataplane_token.enabled
    kubernetes = cfg.environment == "kubernetes"
    return DataplaneAuthenticator(
        keys,
        enabled,
        trust_loopback=cfg.general.trust_loopback,
        reviewer=KubernetesTokenReviewer.in_cluster() if kubernetes and enabled else None,
    )
