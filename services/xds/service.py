"""The xDS service's composition root: ADS server, reconciler and insight recorder on one
asyncio loop, fed by the shared store and change feed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import grpc

from kuma.config import KumaCpConfig
from kuma.wiring import Core
from services.xds.ads.cache import SnapshotCache
from services.xds.ads.callbacks import CallbackChain
from services.xds.ads.server import start_ads_server
from services.xds.insights import InsightRecorder
from services.xds.reconciler import Reconciler

log = logging.getLogger("kuma.xds")


class XdsService:
    def __init__(self, cfg: KumaCpConfig, core: Core) -> None:
        self.cfg = cfg
        self.core = core
        self.instance_id = uuid.uuid4().hex  # controlPlaneInstanceId of this replica's streams
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._subscription: Any = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        xds = self.cfg.xds_server
        self.cache = SnapshotCache()
        self.reconciler = Reconciler(
            self.core.store,
            self.cache,
            loop,
            debounce=self.cfg.change_feed.debounce.total_seconds(),
        )
        self.insights = InsightRecorder(
            self.core.manager,
            loop,
            self.instance_id,
            xds.dataplane_status_flush_interval.total_seconds(),
        )
        # Subscribe before the first read so that no change falls between the two.
        self._subscription = self.core.feed.subscribe(self.reconciler.on_change)
        self._server, self.port = await start_ads_server(
            f"{xds.address}:{xds.grpc_port}",
            self.cache,
            CallbackChain(self.reconciler, self.insights),
        )
        self._tasks = [
            loop.create_task(self.reconciler.run(), name="reconciler"),
            loop.create_task(self.insights.run(), name="insights"),
        ]
        log.info("xDS (ADS) listening on %s:%s", xds.address, self.port)

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._server is not None:
            await self._server.stop(grace=1.0)  # streams close: their insights get a disconnect
        await self.insights.flush()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
