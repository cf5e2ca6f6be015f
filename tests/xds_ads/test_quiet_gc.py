"""Collections wait for a quiet loop and freeze what survives; a full one every `longest`
seconds reclaims cyclic garbage that was frozen: nothing is held for good."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from services.xds.quiet_gc import QuietCollector

pytestmark = pytest.mark.slow


class Node:
    """A cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()
    gc.unfreeze()


def test_collects_and_freezes_only_after_the_loop_was_quiet_for_a_moment(loop):
    collector = QuietCollector(loop, quiet=0.2)

    async def scenario():
        for _ in range(5):  # busy every 0.1 s: never quiet for 0.2 s
            collector.busy()
            await asyncio.sleep(0.1)
        assert collector.collections == 0
        await asyncio.sleep(0.35)
        assert collector.collections == 1
        assert gc.get_freeze_count() > 0
        await asyncio.sleep(0.4)  # nothing happened since: no further collection
        assert collector.collections == 1

    loop.run_until_complete(scenario())
    collector.close()
    assert gc.get_freeze_count() == 0


def test_constant_churn_still_gets_a_collection_every_longest_seconds(loop):
    collector = QuietCollector(loop, quiet=0.2, longest=0.5)

    async def scenario():
        for _ in range(20):  # 1 s, busy every 0.05 s
            collector.busy()
            await asyncio.sleep(0.05)

    loop.run_until_complete(scenario())
    assert collector.collections >= 1
    collector.close()


def test_cyclic_garbage_frozen_by_one_collection_is_reclaimed_by_a_full_one(loop):
    collector = QuietCollector(loop, quiet=0.05, longest=0.6)
    node = Node()
    gone = weakref.ref(node)

    async def quiet_collection() -> None:
        before = collector.collections
        collector.busy()
        while collector.collections == before:
            await asyncio.sleep(0.02)

    loop.run_until_complete(quiet_collection())  # `node` is alive: frozen
    del node
    gc.collect()
    loop.run_until_complete(quiet_collection())  # not full yet
    assert gone() is not None  # a frozen cycle is out of the reach of partial collections
    loop.run_until_complete(asyncio.sleep(0.6))
    loop.run_until_complete(quiet_collection())  # `longest` has passed: full
    assert gone() is None
    collector.close()


def test_streams_opening_and_closing_count_as_busy(loop):
    collector = QuietCollector(loop, quiet=0.15)

    async def scenario():
        collector.on_open("s1", "default.web-1", None)
        await asyncio.sleep(0.1)
        collector.on_close("s1")
        await asyncio.sleep(0.1)
        assert collector.collections == 0  # 0.2 s since the open, but 0.1 s since the close
        await asyncio.sleep(0.15)
        assert collector.collections == 1

    loop.run_until_complete(scenario())
    collector.close()


def test_quiet_collections_scan_the_young_generations_and_a_full_one_everything(loop):
    """What a push built and survived is not scanned on every quiet moment (it is most of the
    heap); the full collection every `longest` seconds is."""
    collector = QuietCollector(loop, quiet=0.05, longest=0.5)
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    async def quiet_collection() -> None:
        before = collector.collections
        collector.busy()
        while collector.collections == before:
            await asyncio.sleep(0.02)

    gc.callbacks.append(seen)
    try:
        loop.run_until_complete(quiet_collection())
        quiet = generations[-1]
        loop.run_until_complete(asyncio.sleep(0.5))
        loop.run_until_complete(quiet_collection())
        full = generations[-1]
    finally:
        gc.callbacks.remove(seen)
        collector.close()
    assert (quiet, full) == (1, 2)


def test_a_reconcile_pass_collects_nothing_and_freezes_what_it_built(loop):
    collector = QuietCollector(loop, quiet=0.05)
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        collector.pass_begins()
        assert not gc.isenabled()
        built = [Node() for _ in range(5000)]  # past every automatic threshold
        frozen = gc.get_freeze_count()
        collector.pass_ends()
        assert gc.isenabled() and generations == []
        assert gc.get_freeze_count() >= frozen + len(built)
    finally:
        gc.callbacks.remove(seen)
        collector.close()
    assert gc.isenabled()
