"""DataplaneInsight (spec §3.11): the xDS subscriptions of one Dataplane, written by kuma-cp."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from kuma.resources.base import Spec, Timestamp, UInt32, UInt64


class DiscoveryServiceStats(Spec):
    responses_sent: UInt64 = 0
    responses_acknowledged: UInt64 = 0
    responses_rejected: UInt64 = 0


class SubscriptionStatus(Spec):
    last_update_time: Timestamp | None = None
    total: DiscoveryServiceStats = DiscoveryServiceStats()
    cds: DiscoveryServiceStats = DiscoveryServiceStats()
    eds: DiscoveryServiceStats = DiscoveryServiceStats()
    lds: DiscoveryServiceStats = DiscoveryServiceStats()
    rds: DiscoveryServiceStats = DiscoveryServiceStats()


class Subscription(Spec):
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
