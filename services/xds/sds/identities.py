"""Workload identities (spec §9, done with rotation): who gets a certificate, issuing it, and
keeping it fresh on the open stream.

The xDS process generates each workload key itself (EC P-256) and has a CSR for
`spiffe://{mesh}/{service}` signed by a `kuma.ca.CertificateAuthority` (in-process, or the
worker's RPC client): CA private keys never enter this process unless the CA is in-process.

Who gets one: a node with an open stream on this replica. Every such stream was bound to that
very node by its own credential when it opened (services/xds/auth.py), so an identity is only
ever sent to streams authenticated as its dataplane; nothing here reads a token or a file.

Rotation: a certificate is replaced after `certificateRotationPercent` of its lifetime (80% of
24 h by default); one timer per process (not per dataplane) wakes for the earliest due identity
and marks its mesh dirty; the rebuild issues the successor and the stream pushes the new
`identity_cert`. Envoy applies it to new handshakes; open connections are unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from kuma import ca as kca
from services.xds.generator.security import identity_secret, mesh_ca_secret
from services.xds.nodes import split_node_id

log = logging.getLogger("kuma.xds.identity")


def _pem(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def trust_bundle(authority: kca.CertificateAuthority, mesh: str) -> secret_pb2.Secret:
    """The `mesh_ca` secret: the roots of `mesh`'s CA."""
    return mesh_ca_secret(_pem(authority.mesh_ca(mesh)))


@dataclass(frozen=True)
class Identity:
    mesh: str
    service: str
    chain_pem: bytes
    key_pem: bytes
    serial: int
    issued_at: float  # epoch seconds
    not_after: float
    rotate_at: float
    secret: secret_pb2.Secret  # `identity_cert`, built once and shared by every push
    roots_pem: bytes = b""  # the trust bundle it was checked against


def issue_identity(
    authority: kca.CertificateAuthority,
    mesh: str,
    service: str,
    lifetime: float,
    rotation_percent: int,
    roots_pem: bytes | None = None,
) -> Identity:
    """New key, CSR, signature (blocking: run in a thread). A CA in this process signs the
    key itself: a CSR proves possession of the key to a CA elsewhere (the worker).

    The signed chain is checked before use (`kuma.ca.check_workload_chain`): it must certify
    this key, name exactly `spiffe://{mesh}/{service}` and chain to the mesh's CA roots
    (`roots_pem`, else `authority.mesh_ca(mesh)`). A chain that does not raises
    `CertificateReplyError` and no identity is issued."""
    key = kca.new_private_key()
    if isinstance(authority, kca.InProcessCA):  # the CA is here: no CSR to send it
        chain = authority.sign_key(mesh, service, key.public_key(), lifetime)
    else:
        chain = _pem(authority.sign(mesh, service, kca.workload_csr(key, mesh, service), lifetime))
    roots = roots_pem if roots_pem is not None else _pem(authority.mesh_ca(mesh))
    leaf = kca.check_workload_chain(chain, key.public_key(), mesh, service, roots)
    key_pem = kca.private_key_pem(key)
    issued = time.time()
    not_after = leaf.not_valid_after_utc.timestamp()
    return Identity(
        mesh=mesh,
        service=service,
        chain_pem=chain,
        key_pem=key_pem,
        serial=leaf.serial_number,
        issued_at=issued,
        not_after=not_after,
        rotate_at=issued + (not_after - issued) * rotation_percent / 100,
        secret=identity_secret(chain, key_pem),
        roots_pem=roots,
    )


@dataclass(frozen=True)
class _Request:
    node_id: str
    service: str


class IdentityManager:
    """Identities and trust bundles of the dataplanes with a stream on this replica.

    Loop-bound (call from the xDS asyncio loop); signing runs in the default executor.
    `on_due(mesh)` is called when some identity of `mesh` must be rotated (or a failed
    issue retried): the reconciler marks the mesh dirty and calls `prepare` again."""

    def __init__(
        self,
        authority: kca.CertificateAuthority,
        *,
        lifetime: float,
        rotation_percent: int,
        on_due: Callable[[str], None] = lambda mesh: None,
        retry_after: float = 2.0,
    ) -> None:
        self.authority = authority
        self.lifetime = lifetime
        self.rotation_percent = rotation_percent
        self.on_due = on_due
        self.retry_after = retry_after
        self.issued = 0  # certificates issued (stats, tests)
        # Told of each certificate issued (the insight recorder writes its expiry).
        self.on_issued: Callable[[str, Identity], None] = lambda node_id, identity: None
        # Told of each node whose identity is dropped because its mesh's mTLS went off.
        self.on_dropped: Callable[[str], None] = lambda node_id: None
        self._identities: dict[str, Identity] = {}
        self._bundles: dict[str, secret_pb2.Secret] = {}
        self._timer: asyncio.TimerHandle | None = None

    # --- inputs -----------------------------------------------------------------------------

    def forget(self, node_id: str) -> None:
        self._identities.pop(node_id, None)

    def forget_mesh(self, mesh: str) -> None:
        """mTLS went off (or the Mesh went away): drop its identities and bundle."""
        self._bundles.pop(mesh, None)
        for node_id in [n for n, i in self._identities.items() if i.mesh == mesh]:
            del self._identities[node_id]
            self.on_dropped(node_id)

    # --- outputs ----------------------------------------------------------------------------

    def identity(self, node_id: str) -> Identity | None:
        return self._identities.get(node_id)

    def secrets_for(self, node_id: str, mesh: str) -> dict[str, secret_pb2.Secret]:
        out: dict[str, secret_pb2.Secret] = {}
        bundle = self._bundles.get(mesh)
        if bundle is not None:
            out[bundle.name] = bundle
        identity = self._identities.get(node_id)
        if identity is not None and identity.mesh == mesh:
            out[identity.secret.name] = identity.secret
        return out

    # --- issuing ----------------------------------------------------------------------------

    async def prepare(
        self,
        mesh: str,
        nodes: Sequence[tuple[str, str]],
    ) -> set[str]:
        """Make sure each `(node_id, service)` of `mesh` holds a current
        identity, and the mesh's trust bundle is loaded. Returns the node ids whose secrets
        changed (all of them when the trust bundle did)."""
        now = time.time()
        work: list[_Request] = []
        for node_id, service in nodes:
            current = self._identities.get(node_id)
            if current is not None and current.service == service and now < current.rotate_at:
                continue
            work.append(_Request(node_id, service))
        loop = asyncio.get_running_loop()
        try:
            bundle, results = await loop.run_in_executor(None, self._issue_all, mesh, work)
        except Exception:
            log.exception("mesh %r: cannot load the CA; retrying in %ss", mesh, self.retry_after)
            loop.call_later(self.retry_after, self.on_due, mesh)
            return set()
        changed: set[str] = set()
        if (
            self._bundles.get(mesh) is None
            or self._bundles[mesh].SerializeToString() != bundle.SerializeToString()
        ):
            self._bundles[mesh] = bundle
            changed.update(node_id for node_id, _ in nodes)
        retry = False
        for request, result in zip(work, results, strict=True):
            if isinstance(result, Identity):
                self._identities[request.node_id] = result
                changed.add(request.node_id)
                self.on_issued(request.node_id, result)
            else:  # the CA failed: keep the current identity while it lasts, retry soon
                retry = True
        if retry:
            loop.call_later(self.retry_after, self.on_due, mesh)
        self._schedule()
        return changed

    def _issue_all(
        self, mesh: str, work: list[_Request]
    ) -> tuple[secret_pb2.Secret, list[Identity | Exception]]:
        """Runs in a thread: trust bundle, keys and signatures."""
        roots = _pem(self.authority.mesh_ca(mesh))
        bundle = mesh_ca_secret(roots)
        # The mesh's CA changed (e.g. to a provided one): what the old one signed goes too.
        queued = {r.node_id for r in work}
        work += [  # the caller zips `work` with the results
            _Request(n, i.service)
            for n, i in list(self._identities.items())
            if i.mesh == mesh and i.roots_pem != roots and n not in queued
        ]

        def issue(request: _Request) -> Identity | Exception:
            try:
                return issue_identity(
                    self.authority,
                    mesh,
                    request.service,
                    self.lifetime,
                    self.rotation_percent,
                    roots_pem=roots,
                )
            except Exception as exc:  # noqa: BLE001 (reported, retried)
                log.error("%s: cannot issue an identity: %s", request.node_id, exc)
                return exc

        # A remote CA (the worker over RabbitMQ) answers several calls at once: one at a time,
        # turning mTLS on for 1,000 dataplanes waited out 1,000 round trips in a row.
        calls = min(getattr(self.authority, "concurrent_calls", 1), len(work))
        if calls > 1:
            with ThreadPoolExecutor(calls, thread_name_prefix="kuma-identity") as pool:
                results = list(pool.map(issue, work))
        else:
            results = [issue(request) for request in work]
        self.issued += sum(isinstance(r, Identity) for r in results)
        return bundle, results

    # --- rotation ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._identities:
            return
        earliest = min(i.rotate_at for i in self._identities.values())
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, earliest - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = time.time()
        due = {i.mesh for i in self._identities.values() if i.rotate_at <= now + 0.01}
        for mesh in sorted(due):
            self.on_due(mesh)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def mesh_of(node_id: str) -> str | None:
    parts = split_node_id(node_id)
    return parts[0] if parts else None
