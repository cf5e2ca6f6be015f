"""Incremental ADS: the server sends only resources whose version the client does not have,
and names of those that went away."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2

from services.xds.ads.cache import version_of
from services.xds.ads.stream import Stream
from services.xds.ads.types import WILDCARD_TYPES

WILDCARD = "*"


@dataclass
class _TypeState:
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    known: dict[str, str] = field(default_factory=dict)  # what the client holds: name -> version
    sent_nonce: str | None = None
    sent_version: str = ""


class DeltaStream(Stream):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types: dict[str, _TypeState] = {}

    def on_change(self, type_url: str) -> Any:
        return self._respond(type_url)

    def on_request(self, request: Any) -> Any:
        type_url = request.type_url
        initial = request.initial_resource_versions
        self.check_request(
            type_url,
            len(request.resource_names_subscribe)
            + len(request.resource_names_unsubscribe)
            + len(initial),
        )
        self.check_name_lengths(request.resource_names_subscribe)
        self.check_name_lengths(initial)
        self.check_name_lengths(initial.values())
        state = self.types.get(type_url)
        subscribe = set(request.resource_names_subscribe)
        if state is None:
            # First request of a type: no names on LDS/CDS means wildcard (legacy form).
            state = self.types[type_url] = _TypeState(
                wildcard=WILDCARD in subscribe or (type_url in WILDCARD_TYPES and not subscribe),
                known=dict(initial),
            )
        elif WILDCARD in subscribe:
            state.wildcard = True
        unsubscribe = set(request.resource_names_unsubscribe)
        if WILDCARD in unsubscribe:
            state.wildcard = False
        state.names |= subscribe - {WILDCARD}
        state.names -= unsubscribe
        for name in unsubscribe:
            state.known.pop(name, None)  # the client dropped it; send again if re-subscribed
        # What the stream keeps for this type grows with every subscribe: bound it as a whole.
        limit = self.limits.names_per_subscription
        self.check_names(len(state.names), limit, "subscribed")
        self.check_names(len(state.known), limit, "held by the client")
        if subscribe or unsubscribe or initial:
            held = sum(map(len, state.names)) + sum(len(k) + len(v) for k, v in state.known.items())
            self.hold_names(type_url, held)
        if request.response_nonce and request.response_nonce == state.sent_nonce:
            if request.HasField("error_detail"):
                self.callbacks.on_nack(
                    self.id, type_url, state.sent_version, request.error_detail.message
                )
            self.confirmed(type_url, accepted=not request.HasField("error_detail"))
        return self._respond(type_url)

    def _respond(self, type_url: str) -> Any:
        state = self.types[type_url]
        snapshot = self.snapshot()
        if snapshot is None:
            return None
        current = snapshot.of(type_url)
        in_scope = current.select(None if state.wildcard else state.names)
        changed = [p for p in in_scope if state.known.get(p.name) != p.version]
        scope_names = {p.name for p in in_scope}
        removed = sorted(n for n in state.known if n not in scope_names)
        if not changed and not removed:
            return None
        for name in removed:
            del state.known[name]
        for packed in changed:
            state.known[packed.name] = packed.version
        state.sent_nonce = self.next_nonce()
        state.sent_version = version_of(in_scope)
        self.responded(type_url)
        return discovery_pb2.DeltaDiscoveryResponse(
            system_version_info=state.sent_version,
            type_url=type_url,
            nonce=state.sent_nonce,
            removed_resources=removed,
            resources=[
                discovery_pb2.Resource(name=p.name, version=p.version, resource=p.any)
                for p in changed
            ],
        )
