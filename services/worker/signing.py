"""Certificate signing for the worker's RPC: a thin adapter over the builtin Mesh CA functions of
`kuma/ca.py` (`sign_workload`, `mesh_ca_bundle`), which load the mesh CA keys from the store.
Only this service (and `kuma-cp run`, in-process) loads them.

RPC values are JSON: the CSR and the returned PEM travel as ASCII text.

Lifetime: a certificate lives at most `max_ttl_seconds`, the worker's own
`sdsServer.certificateLifetime` (24h by default): a longer request is signed for that long (the
xDS side schedules its rotation from the certificate's real expiry), so even a caller holding the
worker key cannot obtain a long-lived identity.
"""

from __future__ import annotations

import logging

from kuma import ca
from kuma.store.base import ResourceStore

log = logging.getLogger("kuma.worker")

# Used when a caller does not say how long the certificate should live.
DEFAULT_TTL_SECONDS = 24 * 3600.0


def _pem_bytes(pem: str | bytes) -> bytes:
    if isinstance(pem, bytes):
        return pem
    try:
        return pem.encode("ascii")
    except UnicodeEncodeError:
        raise ca.CertificateRequestError("the certificate request is not ASCII PEM") from None


class Signer:
    def __init__(self, store: ResourceStore, max_ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self.authority = ca.InProcessCA(store)
        self.max_ttl_seconds = max_ttl_seconds

    def sign(
        self, mesh: str, service: str, csr_pem: str | bytes, ttl_seconds: float | None = None
    ) -> str:
        """The chain PEM (leaf first) for a CSR of `spiffe://{mesh}/{service}`."""
        if not isinstance(csr_pem, str | bytes):
            raise ca.CertificateRequestError("the certificate request must be PEM text")
        if ttl_seconds is None:
            ttl_seconds = min(DEFAULT_TTL_SECONDS, self.max_ttl_seconds)
        elif isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float):
            raise ca.CertificateRequestError("ttl_seconds must be a number of seconds")
        if ttl_seconds > self.max_ttl_seconds:
            log.info(
                "sign %r/%r: lifetime %gs capped to %gs (sdsServer.certificateLifetime)",
                mesh,
                service,
                ttl_seconds,
                self.max_ttl_seconds,
            )
            ttl_seconds = self.max_ttl_seconds
        chain = self.authority.sign(mesh, service, _pem_bytes(csr_pem), float(ttl_seconds))
        return chain.decode("ascii")

    def mesh_ca(self, mesh: str) -> str:
        """The trust bundle PEM of `mesh`."""
        return self.authority.mesh_ca(mesh).decode("ascii")
