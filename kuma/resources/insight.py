"""DataplaneInsight (spec §3.11): the xDS subscriptions of one Dataplane, written by kuma-cp."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from kuma.resources.base import Spec, Timestamp, UInt32, UInt64


class _KeepsSetMessages(Spec):
    """A message field that was given, even empty (`"status": {"total": {}}`), is written back,
    as protobuf-JSON writes every set message field: default values are omitted, set messages
    are not. Only the fields named in `_messages` (the others are scalars or optional)."""

    _messages: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _keep_set_messages(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        out = handler(self)
        kept = [n for n in self._messages if n in self.model_fields_set]
        if not (isinstance(out, dict) and info.exclude_defaults and kept):
            return out
        ordered: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            key = (field.alias or name) if info.by_alias else name
            if key in out:
                ordered[key] = out[key]
            elif name in kept:
                ordered[key] = getattr(self, name).model_dump(
                    mode=info.mode, by_alias=info.by_alias, exclude_defaults=True
                )
        return ordered


class DiscoveryServiceStats(Spec):
    responses_sent: UInt64 = 0
    responses_acknowledged: UInt64 = 0
    responses_rejected: UInt64 = 0


class SubscriptionStatus(_KeepsSetMessages):
    _messages = ("total", "cds", "eds", "lds", "rds")

    last_update_time: Timestamp | None = None
    total: DiscoveryServiceStats = DiscoveryServiceStats()
    cds: DiscoveryServiceStats = DiscoveryServiceStats()
    eds: DiscoveryServiceStats = DiscoveryServiceStats()
    lds: DiscoveryServiceStats = DiscoveryServiceStats()
    rds: DiscoveryServiceStats = DiscoveryServiceStats()


class Subscription(_KeepsSetMessages):
    _messages = ("status",)

    id: str = ""
    control_plane_instance_id: str = ""
    connect_time: Timestamp | None = None
    disconnect_time: Timestamp | None = None
    status: SubscriptionStatus = SubscriptionStatus()

    @property
    def connected(self) -> bool:
        return self.connect_time is not None and self.disconnect_time is None


class MtlsInsight(Spec):
    """The dataplane's workload certificate (Kuma 1.x's `mTLS` block), written by the xDS
    replica that issued it."""

    certificate_expiration_time: Timestamp | None = None
    last_certificate_regeneration: Timestamp | None = None
    certificate_regenerations: UInt32 = 0


class DataplaneInsightSpec(Spec):
    subscriptions: list[Subscription] = []
    mtls: MtlsInsight | None = Field(default=None, alias="mTLS")

    def is_online(self) -> bool:
        return any(s.connected for s in self.subscriptions)

    def latest(self) -> Subscription | None:
        """The subscription with the latest connect time; the first one when none connected."""
        connected = [s for s in self.subscriptions if s.connect_time is not None]
        if connected:
            return max(connected, key=lambda s: s.connect_time or datetime.min)
        return self.subscriptions[0] if self.subscriptions else None
