"""Who may read the monitoring assignments (docs/security.md, 5676): they name every dataplane's
address and tags, so a MADS stream needs the operator's credential, checked when the stream
opens, before anything is read from it:

- `authorization: Bearer <admin token>` in the call's gRPC metadata: the token writes to the API
  need (`apiServer.adminToken`, `apiServer.adminTokenFile`, else the one stored in `kuma.system`,
  printed by `kuma-cp admin-token`); a token that is presented is always checked;
- or, without a token, a loopback peer while `general.trustLoopback` is on.

Dataplane tokens give no access here: one names a single dataplane, MADS shows them all. The
check does not depend on `adminServer.apis.dataplaneToken.enabled`, which is about dataplanes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from kuma.errors import KumaError
from services.xds.auth import authorization, bearer, peer_is_local

log = logging.getLogger("kuma.mads.auth")
NO_CREDENTIAL = (
    "monitoring assignments need the admin token: send `authorization: Bearer <token>` "
    "(see `kuma-cp admin-token`; kuma-prometheus-sd --admin-token-file)"
)
INVALID = "invalid admin token"
# The stored token is re-read at most this often, and after this long at the latest.
REREAD_AFTER_MISMATCH = 0.5
CACHE_FOR = 5.0


class AdminCredential:
    """The admin-token check of MADS streams. `configured`: the operator's token
    (`kuma.admin_token.configured_token`), fixed for the process; without one, `stored()` reads
    the generated token from the store (in a worker thread: it may be Postgres), cached."""

    def __init__(
        self,
        configured: str | None,
        stored: Callable[[], str | None],
        *,
        trust_loopback: bool,
    ) -> None:
        self.configured = configured
        self.stored = stored
        self.trust_loopback = trust_loopback
        self._cached: str | None = None
        self._read_at = -1e9

    async def _token(self, given: str) -> str | None:
        if self.configured is not None:
            return self.configured
        now = time.monotonic()
        stale = now - self._read_at > CACHE_FOR
        mismatch = self._cached is None or not _equal(given, self._cached)
        if stale or (mismatch and now - self._read_at > REREAD_AFTER_MISMATCH):
            self._read_at = now
            loop = asyncio.get_running_loop()
            self._cached = await loop.run_in_executor(None, self.stored)
        return self._cached

    async def check(self, context: Any) -> None:
        """Return if the call may read assignments; abort it (which raises) otherwise."""
        given = bearer(authorization(context))
        if not given:
            if self.trust_loopback and peer_is_local(context):
                return
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, NO_CREDENTIAL)
        try:
            expected = await self._token(given)
        except KumaError as exc:
            log.warning("cannot read the admin token to check a MADS stream: %s", exc)
            # the reason names hosts and users: the log has it, not the client
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Store unavailable")
            raise
        if expected is None or not _equal(given, expected):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, INVALID)


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
