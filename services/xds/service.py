"""The xDS service's composition root: ADS server, reconciler and insight recorder on one
asyncio loop, fed by the shared store and change feed; with mTLS meshes, the identity manager
(secrets over ADS) and the standalone SDS server (5677, TLS); and MADS (5676,
services/xds/mads/), the monitoring assignments for Prometheus.

The certificate authority is passed in (the worker's RPC client in the split stack); without one
the builtin CA functions run in-process over the store (`kuma-cp run`, tests)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import grpc

from kuma import heartbeat, server_tls
from kuma.ca import CertificateAuthority, InProcessCA
from kuma.config import KumaCpConfig
from kuma.dataplane_auth import authenticator_for
from kuma.errors import KumaError
from kuma.wiring import Core
from services.xds.ads.cache import SnapshotCache
from services.xds.ads.callbacks import CallbackChain
from services.xds.ads.server import StreamPolicy, start_ads_server
from services.xds.ads.stream import StreamLimits, StreamSlots
from services.xds.auth import StreamAuthenticator
from services.xds.generator.security import mesh_mtls
from services.xds.insights import NO_CERTIFICATE, InsightRecorder
from services.xds.mads.service import MadsService
from services.xds.metrics import MetricsCallbacks
from services.xds.quiet_gc import QuietCollector
from services.xds.reconciler import Reconciler
from services.xds.sds.identities import IdentityManager
from services.xds.sds.server import SdsServicer, start_sds_server

log = logging.getLogger("kuma.xds")


class XdsService:
    def __init__(
        self, cfg: KumaCpConfig, core: Core, authority: CertificateAuthority | None = None
    ) -> None:
        self.cfg = cfg
        self.core = core
        self.authority: CertificateAuthority = authority or InProcessCA(core.store)
        self.instance_id = uuid.uuid4().hex  # controlPlaneInstanceId of this replica's streams
        self.port = 0
        self.sds_port = 0
        self.cert_pem = b""  # the certificate 5678 and 5677 present: what clients must trust
        self._server: grpc.aio.Server | None = None
        self._sds_server: grpc.aio.Server | None = None
        self.mads: MadsService | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._subscription: Any = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        xds = self.cfg.xds_server
        self.cache = SnapshotCache()
        self.metrics = MetricsCallbacks()
        self.collector = QuietCollector(loop)
        sds = self.cfg.sds_server
        certificate = await loop.run_in_executor(None, server_tls.load, self.cfg, self.core.store)
        self.cert_pem = certificate.cert_pem
        tls = (certificate.cert_pem, certificate.key_pem)
        self.policy = StreamPolicy(
            auth=StreamAuthenticator(authenticator_for(self.cfg, self.core.store)),
            limits=StreamLimits(
                queue_size=xds.stream_queue_size,
                names_per_request=xds.max_resource_names_per_request,
                names_per_subscription=xds.max_resource_names_per_subscription,
                first_request_timeout=xds.first_request_timeout.total_seconds(),
                name_bytes=xds.max_message_bytes,
            ),
            slots=StreamSlots(xds.max_streams),
        )
        lifetime = sds.certificate_lifetime.total_seconds()
        self.identities = IdentityManager(
            self.authority,
            lifetime=lifetime,
            rotation_percent=sds.certificate_rotation_percent,
            on_due=lambda mesh: self.reconciler.mark_identities(mesh),
        )
        self.reconciler = Reconciler(
            self.core.store,
            self.cache,
            loop,
            debounce=self.cfg.change_feed.debounce.total_seconds(),
            mtls=mesh_mtls,
            identities=self.identities,
            before_pass=self.collector.pass_begins,
            after_pass=self.collector.pass_ends,
        )
        self.insights = InsightRecorder(
            self.core.manager,
            loop,
            self.instance_id,
            xds.dataplane_status_flush_interval.total_seconds(),
        )
        # mTLS expiry in insights, and no expiry once a node's identity is dropped
        self.identities.on_issued = self.insights.on_certificate
        self.identities.on_dropped = lambda node: self.insights.on_certificate(node, NO_CERTIFICATE)
        # Subscribe before the first read so that no change falls between the two.
        self._subscription = self.core.feed.subscribe(self.reconciler.on_change)
        self._server, self.port = await start_ads_server(
            f"{xds.address}:{xds.grpc_port}",
            self.cache,
            CallbackChain(self.reconciler, self.insights, self.metrics, self.collector),
            policy=self.policy,
            tls=tls if xds.tls_enabled else None,
            max_message_bytes=xds.max_message_bytes,
        )
        await self._start_sds(tls)
        self.mads = MadsService(self.cfg, self.core, self.policy)
        await self.mads.start(tls if xds.tls_enabled else None)
        # Heart-beat so that the worker's sweep can close this replica's subscriptions if it dies.
        await loop.run_in_executor(None, heartbeat.beat, self.core.store, self.instance_id)
        self._tasks = [
            loop.create_task(self.reconciler.run(), name="reconciler"),
            loop.create_task(self.insights.run(), name="insights"),
            loop.create_task(self._beat(), name="heartbeat"),
        ]
        log.info(
            "xDS (ADS) listening on %s:%s (%s)",
            xds.address,
            self.port,
            "TLS" if xds.tls_enabled else "plaintext: xdsServer.tlsEnabled is off",
        )

    async def _start_sds(self, tls: tuple[bytes, bytes]) -> None:
        sds = self.cfg.sds_server
        address = f"{self.cfg.xds_server.address}:{sds.grpc_port}"
        # SDS streams read the same node snapshots: the reconciler is all they need to tell.
        servicer = SdsServicer(self.cache, self.reconciler, self.policy)
        try:
            self._sds_server, self.sds_port = await start_sds_server(
                address, servicer, *tls, max_message_bytes=self.cfg.xds_server.max_message_bytes
            )
        except (OSError, RuntimeError) as exc:
            # Envoys configured by this control plane take their secrets over ADS: without the
            # standalone SDS server they still work, so a busy port is not fatal.
            log.error("SDS server not started: cannot listen on %s: %s", address, exc)
            return
        log.info("SDS listening on %s:%s (TLS)", self.cfg.xds_server.address, self.sds_port)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(heartbeat.BEAT_INTERVAL.total_seconds())
            try:
                if await loop.run_in_executor(
                    None, heartbeat.beat, self.core.store, self.instance_id
                ):
                    # Our record was gone: a sweep thought us dead and closed our
                    # subscriptions. Write them again as open.
                    self.insights.mark_all_dirty()
            except KumaError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        self.identities.close()
        if self._sds_server is not None:
            await self._sds_server.stop(grace=0.5)
        if self.mads is not None:
            await self.mads.stop()
        if self._server is not None:
            await self._server.stop(grace=1.0)  # streams close: their insights get a disconnect
        await self.insights.flush()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(KumaError):
            await loop.run_in_executor(None, heartbeat.retire, self.core.store, self.instance_id)
        self.collector.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
