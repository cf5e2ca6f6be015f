from __future__ import annotations

import json

import pytest

from kuma.events import RESYNC, Change


def test_round_trip_is_compact() -> None:
    change = Change(op="update", type="Dataplane", mesh="m", name="dp-1", version=3, revision=42)
    text = change.to_json()
    assert " " not in text
    assert json.loads(text) == {
        "op": "update",
        "type": "Dataplane",
        "mesh": "m",
        "name": "dp-1",
        "version": 3,
        "revision": 42,
    }
    assert Change.from_json(text) == change
    assert Change.from_json(text.encode()) == change


def test_resync_marker() -> None:
    marker = Change.resync(7)
    assert marker.is_resync and marker.op == RESYNC and marker.revision == 7
    assert Change.from_json(marker.to_json()) == marker
    assert not Change("delete", "Mesh", "m", "m", 0, 1).is_resync


def test_unknown_keys_are_ignored() -> None:
    raw = Change("create", "Mesh", "m", "m", 1, 1).to_json()[:-1] + ',"future":true}'
    assert Change.from_json(raw).name == "m"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"text"',
        b"{}",
        b'{"op":"explode","type":"","mesh":"","name":"","version":0,"revision":0}',
        b'{"op":"create","type":1,"mesh":"","name":"","version":0,"revision":0}',
        b'{"op":"create","type":"","mesh":"","name":"","version":"1","revision":0}',
        b'{"op":"create","type":"","mesh":"","name":"","version":true,"revision":0}',
        b'{"op":"create","type":"","mesh":"","name":"","version":0,"revision":-1}',
        b'{"op":"create","type":"","mesh":"","name":"","version":0,"revision":1.5}',
        b'{"op":["create"],"type":"","mesh":"","name":"","version":0,"revision":0}',
    ],
)
def test_malformed_messages_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        Change.from_json(data)
