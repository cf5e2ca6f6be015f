"""A CallbackChain hands each event to the callbacks that handle it, in order, and logs a
NACK once however many callbacks it holds."""

from __future__ import annotations

import logging

import pytest

from services.xds.ads.callbacks import CallbackChain, StreamCallbacks
from services.xds.ads.types import CLUSTER


class Recorder(StreamCallbacks):
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name, self.seen = name, seen

    def on_delivered(self, stream_id: str, type_url: str, seconds: float) -> None:
        self.seen.append(f"{self.name}:delivered:{stream_id}")

    def on_nack(self, stream_id: str, type_url: str, version: str, message: str) -> None:
        self.seen.append(f"{self.name}:nack:{message}")


def test_events_reach_their_handlers_in_order_and_a_nack_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    chain = CallbackChain(
        StreamCallbacks(), Recorder("a", seen), StreamCallbacks(), Recorder("b", seen)
    )
    chain.on_open("s1", "default.web-1", None)
    chain.on_delivered("s1", CLUSTER, 0.1)
    with caplog.at_level(logging.WARNING, logger="kuma.xds"):
        chain.on_nack("s1", CLUSTER, "v1", "bad cluster")
    assert seen == [
        "a:delivered:s1",
        "b:delivered:s1",
        "a:nack:bad cluster",
        "b:nack:bad cluster",
    ]
    assert [r.getMessage().count("bad cluster") for r in caplog.records] == [1]
