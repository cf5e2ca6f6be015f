"""Transparent proxying (spec §8.10): `catch_all` receives every redirected connection and hands
it to the (virtual) listener of its original destination, else to `pass_through`."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from google.protobuf import wrappers_pb2
from google.protobuf.message import Message

from services.xds.generator import builders

CATCH_ALL = "catch_all"
PASS_THROUGH = "pass_through"
ORIGINAL_DST = "envoy.filters.listener.original_dst"


def build(port: int) -> list[Message]:
    if port == 0:
        return []
    listener = builders.listener(
        CATCH_ALL,
        "0.0.0.0",
        port,
        [builders.tcp_proxy(PASS_THROUGH, cluster=PASS_THROUGH)],
    )
    # The filter recovers the pre-iptables destination; use_original_dst hands the
    # connection to the listener bound (virtually) to it.
    listener.listener_filters.append(
        listener_components_pb2.ListenerFilter(
            name=ORIGINAL_DST, typed_config=builders.pack(original_dst_pb2.OriginalDst())
        )
    )
    listener.use_original_dst.CopyFrom(wrappers_pb2.BoolValue(value=True))
    cluster = cluster_pb2.Cluster(
        name=PASS_THROUGH,
        type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED,
        connect_timeout=builders.duration(builders.CONNECT_TIMEOUT),
    )
    return [listener, cluster]
