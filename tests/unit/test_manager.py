"""Resource manager semantics (spec §3.15) on both stores: bad input changes nothing."""

from __future__ import annotations

import pytest

from kuma.errors import ConflictError, MeshNotFoundError, ValidationError
from kuma.manager import ResourceManager, ensure_mesh
from kuma.resources import wire
from kuma.resources.registry import decode_spec
from kuma.store import MemoryStore

DP = {
    "type": "Dataplane",
    "mesh": "default",
    "name": "redis-1",
    "networking": {"inbound": [{"interface": "127.0.0.1:9000:6379", "tags": {"service": "redis"}}]},
}


@pytest.fixture()
def manager() -> ResourceManager:
    m = ResourceManager(MemoryStore())
    ensure_mesh(m, "default", decode_spec("Mesh", {}))
    return m


def test_mesh_create_applies_defaults(manager):
    stored = manager.get("Mesh", "default", "default")
    assert wire.to_json(stored) == {
        "type": "Mesh",
        "name": "default",
        "mtls": {"ca": {"builtin": {}}},
    }


def test_ensure_mesh_is_idempotent(manager):
    assert ensure_mesh(manager, "default", decode_spec("Mesh", {})) is False
    assert manager.list("Mesh").total == 1


def test_create_in_missing_mesh(manager):
    res = wire.from_json({**DP, "mesh": "nope"})
    with pytest.raises(MeshNotFoundError) as info:
        manager.create(res)
    assert info.value.violations[0].message == "mesh of name nope is not found"
    assert manager.list("Dataplane").total == 0


@pytest.mark.parametrize(
    "body",
    [
        {**DP, "networking": {"inbound": [{"interface": "bad", "tags": {"service": "r"}}]}},
        {**DP, "name": "x" * 101},
        {**DP, "name": ""},
    ],
)
def test_invalid_resources_change_nothing(manager, body):
    revision = manager.store.revision()
    with pytest.raises(ValidationError):
        manager.upsert(wire.from_json(body))
    assert manager.list("Dataplane").total == 0
    assert manager.store.revision() == revision


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"type": "Banana", "name": "x"}',
        '{"type": "Dataplane", "mesh": "default", "name": "x", "networking": []}',
    ],
)
def test_bad_text_raises_one_error_type(manager, text):
    revision = manager.store.revision()
    with pytest.raises(ValidationError):
        manager.upsert(wire.from_json(wire.parse_json_text(text)))
    assert manager.store.revision() == revision


def test_upsert_creates_then_updates(manager):
    stored, created = manager.upsert(wire.from_json(DP))
    assert created and stored.version == 1
    stored, created = manager.upsert(wire.from_json(DP))
    assert not created and stored.version == 2


def test_stale_update_conflicts(manager):
    stored, _ = manager.upsert(wire.from_json(DP))
    manager.update(stored)
    with pytest.raises(ConflictError):
        manager.update(stored)


def test_ca_change_forbidden_while_mtls_enabled(manager):
    on = wire.from_json({"type": "Mesh", "name": "default", "mtls": {"enabled": True}})
    manager.upsert(on)
    provided = wire.from_json(
        {"type": "Mesh", "name": "default", "mtls": {"enabled": True, "ca": {"provided": {}}}}
    )
    with pytest.raises(ValidationError) as info:
        manager.upsert(provided)
    assert [(v.field, v.message) for v in info.value.violations] == [
        (
            "mtls.ca",
            "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and "
            "then change the CA",
        )
    ]
