"""MADS in an xDS process: the assignment reconciler on the change feed and the gRPC server on
`{xdsServer.address}:{monitoringAssignmentServer.grpcPort}` (5676), with TLS when
`xdsServer.tlsEnabled` (the certificate of 5678), started and stopped by `XdsService`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc

from kuma.admin_token import configured_token, stored_token
from kuma.config import KumaCpConfig
from kuma.wiring import Core
from services.xds.ads.server import StreamPolicy
from services.xds.mads.auth import AdminCredential
from services.xds.mads.reconciler import AssignmentCache, MadsReconciler
from services.xds.mads.server import MadsServicer, start_mads_server

log = logging.getLogger("kuma.mads")


class MadsService:
    def __init__(self, cfg: KumaCpConfig, core: Core, policy: StreamPolicy) -> None:
        self.cfg = cfg
        self.core = core
        self.policy = policy
        self.port = 0
        self.cache = AssignmentCache()
        self._server: grpc.aio.Server | None = None
        self._subscription: Any = None
        self._task: asyncio.Task[Any] | None = None

    async def start(self, tls: tuple[bytes, bytes] | None) -> None:
        """Serve MADS. A port that cannot be bound is logged, not fatal: the dataplanes this
        process serves do not need MADS."""
        loop = asyncio.get_running_loop()
        self.reconciler = MadsReconciler(
            self.core.store,
            self.cache,
            loop,
            debounce=self.cfg.change_feed.debounce.total_seconds(),
        )
        credential = AdminCredential(
            configured_token(self.cfg),  # a missing adminTokenFile stops the start, as the API
            lambda: stored_token(self.core.store),
            trust_loopback=self.cfg.general.trust_loopback,
        )
        address = f"{self.cfg.xds_server.address}:{self.cfg.monitoring_assignment_server.grpc_port}"
        try:
            self._server, self.port = await start_mads_server(
                address,
                MadsServicer(self.cache, credential, self.policy),
                tls=tls,
                max_message_bytes=self.cfg.xds_server.max_message_bytes,
            )
        except (OSError, RuntimeError) as exc:
            log.error("MADS server not started: cannot listen on %s: %s", address, exc)
            return
        # Subscribed before any read: the first watcher's full read cannot miss a write.
        self._subscription = self.core.feed.subscribe(self.reconciler.on_change)
        self._task = loop.create_task(self.reconciler.run(), name="mads-reconciler")
        log.info(
            "MADS listening on %s:%s (%s)",
            self.cfg.xds_server.address,
            self.port,
            "TLS" if tls is not None else "plaintext: xdsServer.tlsEnabled is off",
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._server is not None:
            await self._server.stop(grace=0.5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
