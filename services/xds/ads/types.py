"""xDS v3 type URLs, in the order a change is delivered (make before break: clusters and their
endpoints before the listeners and routes that use them)."""

from __future__ import annotations

PREFIX = "type.googleapis.com/"
CLUSTER = PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = PREFIX + "envoy.config.route.v3.RouteConfiguration"
SECRET = PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
# What a stream may ask for: per-type state is kept for these alone.
KNOWN_TYPES = frozenset(ORDER)
# Types a client may ask for without naming resources (SotW: an empty name list means all).
WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})
# DataplaneInsight's per-type counters (spec §12.2).
SHORT_NAMES = {CLUSTER: "cds", ENDPOINT: "eds", LISTENER: "lds", ROUTE: "rds"}


def order(type_url: str) -> int:
    return ORDER.index(type_url) if type_url in ORDER else len(ORDER)
