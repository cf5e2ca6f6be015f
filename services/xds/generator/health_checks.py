"""HealthCheck policy -> active health checks and outlier detection on a cluster (spec §8.13)."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import health_check_pb2
from google.protobuf import wrappers_pb2

from kuma.resources.policies import ActiveChecks, HealthCheckConf, PassiveChecks
from services.xds.generator import builders


def apply(cluster: cluster_pb2.Cluster, conf: HealthCheckConf | None) -> None:
    """Configure `cluster` (a fresh message, not a shared one) from the policy's conf.

    All-zero blocks configure nothing, like absent ones.
    """
    if conf is None:
        return
    active = conf.active_checks
    if active is not None and active != ActiveChecks():
        check = health_check_pb2.HealthCheck(
            tcp_health_check=health_check_pb2.HealthCheck.TcpHealthCheck(),
            unhealthy_threshold=wrappers_pb2.UInt32Value(value=active.unhealthy_threshold),
            healthy_threshold=wrappers_pb2.UInt32Value(value=active.healthy_threshold),
        )
        # Envoy requires both durations; validation (§3.9) makes them positive.
        if active.interval is not None:
            check.interval.CopyFrom(builders.duration(active.interval))
        if active.timeout is not None:
            check.timeout.CopyFrom(builders.duration(active.timeout))
        cluster.health_checks.append(check)
    passive = conf.passive_checks
    if passive is not None and passive != PassiveChecks():
        outlier = outlier_detection_pb2.OutlierDetection(
            consecutive_5xx=wrappers_pb2.UInt32Value(value=passive.unhealthy_threshold)
        )
        if passive.penalty_interval is not None:
            outlier.interval.CopyFrom(builders.duration(passive.penalty_interval))
        cluster.outlier_detection.CopyFrom(outlier)
