"""A light ADS client for tests: one SotW stream that ACKs like Envoy and keeps the latest
Clusters it was sent; `ended` tells why the stream ended (None while it is open)."""

from __future__ import annotations

import queue
import threading
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


class AdsWatcher:
    """`ca_pem`: the control plane's certificate (None: plaintext); `token`: the dataplane
    token sent on the stream. Dial `address` by any name: the certificate is checked for
    `localhost`, which it always names."""

    def __init__(
        self, address: str, node_id: str, ca_pem: bytes | None = None, token: str | None = None
    ):
        self.clusters: dict[str, cluster_pb2.Cluster] = {}
        self.updates = 0  # responses received
        self.ended: str | None = None
        self._requests: queue.Queue[Any] = queue.Queue()
        if ca_pem is None:
            self._channel = grpc.insecure_channel(address)
        else:
            credentials = grpc.ssl_channel_credentials(ca_pem)
            options = [("grpc.ssl_target_name_override", "localhost")]
            self._channel = grpc.secure_channel(address, credentials, options)
        metadata = [("authorization", f"Bearer {token}")] if token else []
        first = discovery_pb2.DiscoveryRequest(type_url=CDS)
        first.node.id = node_id
        first.node.cluster = "test"
        self._requests.put(first)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        self._responses = stub.StreamAggregatedResources(
            iter(self._requests.get, None), metadata=metadata
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for response in self._responses:
                clusters = {}
                for packed in response.resources:
                    cluster = cluster_pb2.Cluster()
                    packed.Unpack(cluster)
                    clusters[cluster.name] = cluster
                self.clusters = clusters
                self.updates += 1
                self._requests.put(
                    discovery_pb2.DiscoveryRequest(
                        type_url=response.type_url,
                        version_info=response.version_info,
                        response_nonce=response.nonce,
                    )
                )
        except grpc.RpcError as exc:
            self.ended = f"{exc.code()}: {exc.details()}"  # type: ignore[attr-defined]
        else:
            self.ended = "closed by the server"

    def close(self) -> None:
        self._requests.put(None)
        self._responses.cancel()
        self._channel.close()
