"""Kuma's store metrics: `store` (a summary by operation and resource type, seconds) and
`store_conflicts`, counted by the store every process opens (`kuma.wiring.open_store`)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from kuma.config import load_config
from kuma.errors import ConflictError, NotFoundError
from kuma.wiring import open_store
from tests.store.test_contract import make


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_operation_is_timed_by_type_and_conflicts_are_counted() -> None:
    store = open_store(load_config(env={}))
    ops = ("create", "update", "get", "list", "delete")
    before = {op: sample("store_count", operation=op, resource_type="HealthCheck") for op in ops}
    conflicts = sample("store_conflicts", resource_type="HealthCheck")

    store.create(make("Mesh", "metered", "metered"))
    store.create(make("HealthCheck", "metered", "hc"))
    store.update(make("HealthCheck", "metered", "hc", version=1))
    with pytest.raises(ConflictError):
        store.update(make("HealthCheck", "metered", "hc", version=1))
    store.get("HealthCheck", "metered", "hc")
    store.list("HealthCheck", "metered")
    store.delete("HealthCheck", "metered", "hc")
    with pytest.raises(NotFoundError):  # a failed operation is timed too
        store.get("HealthCheck", "metered", "hc")

    after = {op: sample("store_count", operation=op, resource_type="HealthCheck") for op in ops}
    assert {op: after[op] - before[op] for op in ops} == {
        "create": 1,
        "update": 2,
        "get": 2,
        "list": 1,
        "delete": 1,
    }
    assert sample("store_conflicts", resource_type="HealthCheck") == conflicts + 1
    assert 0 < sample("store_sum", operation="get", resource_type="HealthCheck") < 10
