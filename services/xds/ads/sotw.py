"""State-of-the-world ADS: each response carries every resource of its type the client asked
for; a response answers a request, and the client's next request ACKs or NACKs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.xds.ads.cache import Packed, TypeSnapshot
from services.xds.ads.stream import Stream
from services.xds.ads.types import WILDCARD_TYPES
from services.xds.ads.wire import WireResponse


@dataclass
class _TypeState:
    names: frozenset[str] = frozenset()
    outstanding: bool = True  # the client waits for a response of this type
    sent_version: str | None = None
    sent_nonce: str | None = None
    acked_nonce: str | None = None
    sent_names: frozenset[str] | None = field(default=None)
    # The type's answer the last response was selected from: while the node's snapshot still
    # holds that object, nothing of this type changed (answers are immutable; a change of
    # names asks for a response whatever the answer).
    sent_from: TypeSnapshot | None = None


class SotwStream(Stream):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types: dict[str, _TypeState] = {}

    def on_change(self, type_url: str) -> Any:
        return self._respond(type_url, only_if_changed=True)

    def ready(self, items: list[Packed]) -> bool:
        """Whether to answer with `items`: always, on ADS."""
        return True

    def on_request(self, request: Any) -> Any:
        type_url = request.type_url
        self.check_request(type_url, len(request.resource_names))
        self.check_name_lengths(request.resource_names)
        state = self.types.setdefault(type_url, _TypeState())
        names = frozenset(request.resource_names)
        nonce = request.response_nonce
        if nonce and nonce != state.sent_nonce:
            return None  # answers a response that has since been superseded: ignore
        names_changed = names != state.names
        if names_changed:
            self.hold_names(type_url, sum(map(len, names)))
        state.names = names
        state.outstanding = True
        if nonce and request.HasField("error_detail"):
            # NACK: keep serving the old config; send again only when the content changes.
            self.callbacks.on_nack(
                self.id, type_url, state.sent_version or "", request.error_detail.message
            )
            self.confirmed(type_url, accepted=False)
            return self._respond(type_url, only_if_changed=not names_changed)
        if nonce:
            repeated = state.acked_nonce == nonce
            state.acked_nonce = nonce
            if not repeated:
                self.confirmed(type_url, accepted=True)
            # Envoy repeats an ACKed EDS request while a changed cluster warms up: answer it
            # with the current endpoints, or the cluster change stalls (spec §8.1).
            return self._respond(type_url, only_if_changed=not (repeated or names_changed))
        return self._respond(type_url, only_if_changed=False)

    def _respond(self, type_url: str, only_if_changed: bool) -> Any:
        state = self.types[type_url]
        snapshot = self.snapshot()
        if not state.outstanding or snapshot is None:
            return None  # nothing asked, or the Dataplane is not known yet: wait for it
        wildcard = type_url in WILDCARD_TYPES and not state.names
        answer = snapshot.of(type_url)
        if only_if_changed and answer is state.sent_from:
            return None  # most notices change one type of a node's answers, not all
        items, version = answer.selection(None if wildcard else state.names)
        if only_if_changed and version == state.sent_version or not self.ready(items):
            return None
        state.outstanding = False
        state.sent_version = version
        state.sent_from = answer
        state.sent_nonce = self.next_nonce()
        self.responded(type_url)
        body = answer.response_body(None if wildcard else state.names)
        return WireResponse.of(body, type_url, version, state.sent_nonce)
