"""An xDS service on the shared test loop, over a memory store with an in-process feed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from kuma.config import KumaCpConfig, load_config
from kuma.wiring import Core, ensure_default_mesh, open_core
from services.xds.service import XdsService
from tests.xds_ads.harness import shared_loop


@pytest.fixture()
def cfg() -> KumaCpConfig:
    base = load_config(env={})
    return replace(
        base,
        xds_server=replace(
            base.xds_server,
            grpc_port=0,
            address="127.0.0.1",
            dataplane_status_flush_interval=timedelta(milliseconds=200),
        ),
        change_feed=replace(base.change_feed, debounce=timedelta(milliseconds=10)),
    )


@pytest.fixture()
def core(cfg: KumaCpConfig) -> Iterator[Core]:
    core = open_core(cfg)
    ensure_default_mesh(cfg, core.manager)
    yield core
    core.close()


@pytest.fixture()
def xds(cfg: KumaCpConfig, core: Core) -> Iterator[XdsService]:
    loop = shared_loop()
    service = XdsService(cfg, core)
    asyncio.run_coroutine_threadsafe(service.start(), loop).result(10)
    yield service
    asyncio.run_coroutine_threadsafe(service.stop(), loop).result(20)
