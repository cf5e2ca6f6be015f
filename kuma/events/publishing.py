"""Every write publishes: a ResourceStore wrapper that announces each committed write."""

from __future__ import annotations

import logging

from kuma.events.change import Change, Op
from kuma.events.feed import ChangeFeed
from kuma.resources.base import Resource
from kuma.store.base import ResourceStore
from kuma.store.wrapper import StoreWrapper

log = logging.getLogger(__name__)


class PublishingStore(StoreWrapper):
    """A ResourceStore that publishes a Change after each successful create/update/delete.

    Publishing happens after the inner call returned, i.e. after commit: a failed write publishes
    nothing, and a receiver that re-reads on the message sees the write. A publish that fails
    never fails the (already committed) write; the revision poll covers it. Reads, and any other
    attribute of the inner store, pass straight through.
    """

    def __init__(self, store: ResourceStore, feed: ChangeFeed) -> None:
        self.store = store
        self.feed = feed

    def _publish(self, change: Change) -> None:
        try:
            self.feed.publish(change)
        except Exception:
            log.exception("change feed: publishing %r failed", change)

    def create(self, resource: Resource) -> Resource:
        stored = self.store.create(resource)
        self._publish(_change("create", stored))
        return stored

    def update(self, resource: Resource) -> Resource:
        stored = self.store.update(resource)
        self._publish(_change("update", stored))
        return stored

    def delete(self, type_: str, mesh: str, name: str) -> int:
        revision = self.store.delete(type_, mesh, name)
        self._publish(
            Change(op="delete", type=type_, mesh=mesh, name=name, version=0, revision=revision)
        )
        return revision

    def close(self) -> None:
        # The feed belongs to the composition root, which closes it.
        self.store.close()


def _change(op: Op, stored: Resource) -> Change:
    return Change(
        op=op,
        type=stored.type,
        mesh=stored.mesh,
        name=stored.name,
        version=stored.version,
        revision=stored.revision,
    )
