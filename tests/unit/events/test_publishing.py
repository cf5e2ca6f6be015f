from __future__ import annotations

from dataclasses import replace

import pytest

from kuma.errors import AlreadyExistsError, ConflictError, NotFoundError
from kuma.events import Change, InProcessFeed, PublishingStore
from kuma.store.memory import MemoryStore

from .helpers import Recorder, dataplane, mesh


@pytest.fixture()
def setup() -> tuple[PublishingStore, Recorder]:
    feed = InProcessFeed()
    rec = Recorder()
    feed.subscribe(rec)
    return PublishingStore(MemoryStore(), feed), rec


def test_publishes_each_write_after_commit_with_its_revision(setup) -> None:
    store, rec = setup
    seen_in_store: list[bool] = []
    # A subscriber re-reading on the message must already find the write.
    store.feed.subscribe(
        lambda c: seen_in_store.append(
            c.op == "delete" or store.get(c.type, c.mesh, c.name).revision == c.revision
        )
    )
    created_mesh = store.create(mesh())
    created = store.create(dataplane("dp-1"))
    updated = store.update(created)
    revision = store.delete("Dataplane", "default", "dp-1")
    assert rec.changes == [
        Change("create", "Mesh", "default", "default", 1, created_mesh.revision),
        Change("create", "Dataplane", "default", "dp-1", 1, created.revision),
        Change("update", "Dataplane", "default", "dp-1", 2, updated.revision),
        Change("delete", "Dataplane", "default", "dp-1", 0, revision),
    ]
    assert [c.revision for c in rec.changes] == [1, 2, 3, 4] == list(range(1, store.revision() + 1))
    assert all(seen_in_store)


def test_failed_writes_publish_nothing(setup) -> None:
    store, rec = setup
    store.create(mesh())
    first = store.create(dataplane("dp-1"))
    store.update(first)
    rec.clear()
    with pytest.raises(ConflictError):
        store.update(first)  # stale version
    with pytest.raises(AlreadyExistsError):
        store.create(dataplane("dp-1"))
    with pytest.raises(NotFoundError):
        store.update(dataplane("missing", version=1))
    with pytest.raises(NotFoundError):
        store.delete("Dataplane", "default", "missing")
    assert rec.changes == []


def test_reads_pass_through(setup) -> None:
    store, rec = setup
    store.create(mesh())
    stored = store.create(dataplane("dp-1"))
    assert store.get("Dataplane", "default", "dp-1") == stored
    assert store.list("Dataplane", "default").items == [stored]
    assert store.revision() == 2
    store.ping()
    assert len(rec.changes) == 2  # reads publish nothing


def test_publish_failure_does_not_fail_the_write(caplog) -> None:
    class BrokenFeed(InProcessFeed):
        def publish(self, change: Change) -> None:
            raise RuntimeError("feed down")

    store = PublishingStore(MemoryStore(), BrokenFeed())
    stored = store.create(mesh())
    assert store.get("Mesh", "default", "default") == stored
    assert "feed down" in caplog.text


def test_mesh_delete_is_one_change(setup) -> None:
    store, rec = setup
    store.create(mesh())
    store.create(dataplane("dp-1"))
    rec.clear()
    revision = store.delete("Mesh", "default", "default")
    assert rec.changes == [Change("delete", "Mesh", "default", "default", 0, revision)]
    assert revision == store.revision()


def test_update_carries_new_version(setup) -> None:
    store, rec = setup
    store.create(mesh())
    current = store.create(dataplane("dp-1"))
    for _ in range(3):
        current = store.update(replace(current, spec={"x": current.version}))
    assert [c.version for c in rec.changes if c.type == "Dataplane"] == [1, 2, 3, 4]
