"""Who a stream is (DESIGN §3 "Trust model"): at its first request an ADS or SDS stream is bound
to exactly one Dataplane (mesh, name), by the credential it carries in its own gRPC metadata
(`authorization: Bearer <dataplane token>`, or a Kubernetes service-account token), or, with
`general.trustLoopback`, by coming from this host without one. Nothing a client names (a file,
a URL) is ever opened here.

The credential is checked when the stream opens, not again while it lasts: a token that expires
under an open stream does not cut it (docs/security.md); the next reconnect needs a valid one.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from dataclasses import dataclass
from typing import Any

import grpc

from kuma.dataplane_auth import DataplaneAuthenticator
from kuma.errors import KumaError
from kuma.netutil import is_loopback
from services.xds.nodes import split_node_id

log = logging.getLogger("kuma.xds.auth")


@dataclass(frozen=True, slots=True)
class Principal:
    mesh: str
    name: str

    @property
    def node_id(self) -> str:
        return f"{self.mesh}.{self.name}"


class StreamAuthenticator:
    """Binds streams to dataplanes. The checks run in the default executor: the signing key may
    come from Postgres, and a Kubernetes token is confirmed by a TokenReview."""

    def __init__(self, authenticator: DataplaneAuthenticator) -> None:
        self.authenticator = authenticator

    async def bind(self, node_id: str, context: Any) -> Principal:
        """The dataplane the stream may act as; aborts the call (and raises) otherwise."""
        parts = split_node_id(node_id)
        if parts is None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"node.id {node_id[:256]!r} is not {{mesh}}.{{dataplane name}}",
            )
            raise AssertionError("unreachable: abort raises")
        principal = Principal(*parts)
        token = bearer(authorization(context))
        local = peer_is_local(context)
        if self.authenticator.trusts(token, local):
            return principal  # nothing to check: no trip to a worker thread
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None, self.authenticator.check, principal.mesh, principal.name, token, local
            )
        except KumaError as exc:
            message = str(exc)
            if exc.http_status >= 500:
                log.warning("cannot authenticate a stream of %s: %s", node_id[:256], exc)
                message = exc.details  # the reason names hosts and users: logged, not sent
            await context.abort(grpc.StatusCode[exc.grpc_status], message)
        return principal


def bearer(value: str) -> str:
    value = value.strip()
    return value[7:].strip() if value[:7].lower() == "bearer " else value


def authorization(context: Any) -> str:
    """The single `authorization` metadata value of a call ('' if absent or repeated)."""
    metadata = context.invocation_metadata() or ()
    values = [str(v) for k, v in metadata if k.lower() == "authorization"]
    return values[0] if len(values) == 1 else ""


def peer_is_local(context: Any) -> bool:
    """Whether the call comes from this host: gRPC names peers `ipv4:127.0.0.1:5678` or
    `ipv6:%5B::1%5D:5678` (percent-encoded)."""
    kind, _, rest = urllib.parse.unquote(str(context.peer() or "")).partition(":")
    if kind == "ipv4":
        return is_loopback(rest.rsplit(":", 1)[0])
    if kind == "ipv6":
        return is_loopback(rest.rsplit(":", 1)[0].strip("[]"))
    return False
