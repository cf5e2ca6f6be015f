"""DataplaneInsight flushes (spec §12.2): one batch per flush, only changed subscriptions
written, a close written before the stream is forgotten, and a subscription that cannot be
written (its Mesh is gone) retried by the next flush without holding back the others."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from kuma.errors import NotFoundError
from kuma.manager import ResourceManager
from kuma.resources.base import Resource
from kuma.resources.mesh import MeshSpec
from kuma.store.memory import MemoryStore
from services.xds.ads.counters import StreamCounters
from services.xds.ads.types import CLUSTER, LISTENER
from services.xds.insights import InsightRecorder

INSIGHT = "DataplaneInsight"


@pytest.fixture
def setup():
    loop = asyncio.new_event_loop()
    manager = ResourceManager(MemoryStore())
    manager.create(Resource("Mesh", "default", "default", MeshSpec()))
    yield loop, manager, InsightRecorder(manager, loop, "cp-1")
    loop.close()


def insight(manager: ResourceManager, name: str, mesh: str = "default") -> Resource:
    return manager.get(INSIGHT, mesh, name)


def test_counts_are_written_once_per_change_and_a_close_before_forgetting(setup):
    loop, manager, recorder = setup
    counters = [StreamCounters() for _ in range(3)]  # what each stream counts as it goes
    for i in range(3):
        recorder.on_open(f"s{i}", f"default.web-{i}", None, counters[i])
    counters[0].response(CLUSTER)
    counters[0].ack(CLUSTER)
    counters[0].response(LISTENER)
    loop.run_until_complete(recorder.flush())

    sub = insight(manager, "web-0").spec.subscriptions[0]
    assert sub.control_plane_instance_id == "cp-1" and sub.connected
    assert (sub.status.cds.responses_sent, sub.status.cds.responses_acknowledged) == (1, 1)
    assert sub.status.total.responses_sent == 2
    versions = {i: insight(manager, f"web-{i}").version for i in range(3)}

    counters[1].ack(LISTENER)
    recorder.on_close("s2")
    loop.run_until_complete(recorder.flush())
    assert insight(manager, "web-0").version == versions[0]  # unchanged: not written again
    assert insight(manager, "web-1").version == versions[1] + 1
    assert not insight(manager, "web-2").spec.is_online()
    assert "s2" not in recorder._live and "s1" in recorder._live


def test_an_unwritable_subscription_is_retried_and_does_not_hold_back_the_others(setup):
    loop, manager, recorder = setup
    recorder.on_open("s0", "gone.web-0", None)  # its Mesh does not exist
    recorder.on_open("s1", "default.web-1", None)
    loop.run_until_complete(recorder.flush())
    assert insight(manager, "web-1").spec.is_online()
    with pytest.raises(NotFoundError):
        insight(manager, "web-0", mesh="gone")

    manager.create(Resource("Mesh", "gone", "gone", MeshSpec()))
    loop.run_until_complete(recorder.flush())  # nothing new happened on s0: written anyway
    assert insight(manager, "web-0", mesh="gone").spec.is_online()


def test_a_certificate_lands_in_its_own_nodes_insight_only(setup):
    loop, manager, recorder = setup
    recorder.on_open("s0", "default.web-0", None)
    recorder.on_open("s0b", "default.web-0", None)  # a second stream of the same node
    recorder.on_open("s1", "default.web-1", None)
    loop.run_until_complete(recorder.flush())

    issued = SimpleNamespace(not_after=2_000_000_000, issued_at=1_900_000_000)
    recorder.on_certificate("default.web-0", issued)
    loop.run_until_complete(recorder.flush())
    mtls = insight(manager, "web-0").spec.mtls
    assert mtls is not None and mtls.certificate_expiration_time.timestamp() == 2_000_000_000
    assert insight(manager, "web-1").spec.mtls is None

    recorder.on_close("s0")
    recorder.on_close("s0b")
    loop.run_until_complete(recorder.flush())  # both closes written: the node is forgotten
    recorder.on_certificate("default.web-0", issued)
    assert recorder._of_node.keys() == {"default.web-1"}
