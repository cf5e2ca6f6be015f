"""An attacker's gRPC clients for the xDS (5678) and SDS (5677) ports: each call sends what it is
told, reads what the server gives for a while, and says how the call ended and what it got
(above all: any private key).

gRPC's synchronous client, one thread per call: when the server ends a call while a large
request is still being written, grpc.aio reports its own INTERNAL ("Internal error from Core")
instead of the server's status, and the status is what these tests check.

Usable in-process and as a program, for an attacker in a network namespace:

    python -m tests.security.attacker '{"address": "10.200.0.1:5678", "ca": "...PEM...",
        "calls": [{"node": "default.web-1"}, {"node": "default.web-1", "idle": true}]}'

prints one JSON line per call as it ends (a call may name its own `address`; an `idle` one
sends nothing and ends when stdin closes, or at the server's first-request timeout)."""

from __future__ import annotations

import contextlib
import json
import queue
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

PREFIX = "type.googleapis.com/"
SECRET = PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
LISTENER = PREFIX + "envoy.config.listener.v3.Listener"
CLUSTER = PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
ROUTE = PREFIX + "envoy.config.route.v3.RouteConfiguration"
TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)  # every type the server knows
OPEN = "OPEN"  # the call was still open when the attacker stopped waiting


def server_ca(host: str, port: int) -> str:
    """The certificate the server presents (self-signed: its own CA), as an attacker sees it."""
    return ssl.get_server_certificate((host, port), timeout=5)


@dataclass
class Outcome:
    code: str  # a grpc.StatusCode name ("OK": ended by the server without error), or OPEN
    details: str = ""
    responses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def private_keys(self) -> int:
        return sum(r.get("private_keys", 0) for r in self.responses)

    @property
    def resources(self) -> int:
        return sum(r.get("resources", 0) for r in self.responses)


def node(node_id: str, metadata: Mapping[str, Any] | None = None) -> base_pb2.Node:
    out = base_pb2.Node(id=node_id, cluster="attacker")
    for key, value in (metadata or {}).items():
        if isinstance(value, bool):
            out.metadata.fields[key].bool_value = value
        else:
            out.metadata.fields[key].string_value = str(value)
    return out


def sotw_request(
    type_url: str = SECRET, names: Iterable[str] = ("identity_cert",), **kw: Any
) -> discovery_pb2.DiscoveryRequest:
    return discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names), **kw)


def delta_request(
    type_url: str = SECRET, subscribe: Iterable[str] = ("identity_cert",), **kw: Any
) -> discovery_pb2.DeltaDiscoveryRequest:
    return discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url, resource_names_subscribe=list(subscribe), **kw
    )


def _summary(response: Any) -> dict[str, Any]:
    packed = list(response.resources)
    keys, names = 0, []
    for item in packed:
        any_msg = item.resource if hasattr(item, "resource") else item
        if any_msg.type_url == SECRET:
            secret = secret_pb2.Secret()
            any_msg.Unpack(secret)
            names.append(secret.name)
            if secret.tls_certificate.private_key.inline_bytes:
                keys += 1
    return {
        "type_url": response.type_url,
        "resources": len(packed),
        "secrets": names,
        "private_keys": keys,
    }


@dataclass(frozen=True)
class Channel:
    """Where to dial: TLS trusting `ca` (the server's name taken to be localhost, as an
    attacker dialling an address the certificate does not name would), or plaintext. Each call
    opens its own connection."""

    address: str
    ca: str = ""
    plaintext: bool = False

    def open(self) -> grpc.Channel:
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
        if self.plaintext:
            return grpc.insecure_channel(self.address, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca.encode())
        options.append(("grpc.ssl_target_name_override", "localhost"))
        return grpc.secure_channel(self.address, credentials, options=options)


Attempt = Callable[[], Outcome]


def call(
    channel: Channel,
    node_id: str,
    requests: list[Any] | None = None,
    *,
    token: str = "",
    metadata: Mapping[str, Any] | None = None,
    kind: str = "sotw",
    wait: float = 5.0,
    idle: bool = False,
    until: threading.Event | None = None,
    consume: bool = True,
) -> Attempt:
    """One stream, to run later (`attack`, or call the result): `requests` sent in a row (the
    node on the first unless it has one; default: ask for `identity_cert`), then responses read
    (and ACKed, as Envoy does) until the call ends or `wait` seconds pass (with `until`: until
    that event is set). `kind`: sotw or delta (ADS), sds (SecretDiscoveryService). `idle`: send
    nothing at all. `consume=False`: leave the responses unread."""
    return partial(
        _run, channel, node_id, requests, token, metadata, kind, wait, idle, until, consume
    )


def _run(
    channel: Channel,
    node_id: str,
    requests: list[Any] | None,
    token: str,
    metadata: Mapping[str, Any] | None,
    kind: str,
    wait: float,
    idle: bool,
    until: threading.Event | None,
    consume: bool,
) -> Outcome:
    make = delta_request if kind == "delta" else sotw_request
    requests = list(requests) if requests is not None else [make()]
    if requests and not requests[0].HasField("node"):
        first = type(requests[0])()
        first.CopyFrom(requests[0])
        first.node.CopyFrom(node(node_id, metadata))
        requests[0] = first
    outbox: queue.Queue[Any] = queue.Queue()  # what to send: the requests, then ACKs
    for request in [] if idle else requests:
        outbox.put(request)
    release = threading.Event()  # the attacker stops: the stream may end
    asked = {r.type_url: r for r in requests}  # the latest request of each type

    def send() -> Iterator[Any]:
        while not release.is_set():  # never half-close before: that would end the stream
            with contextlib.suppress(queue.Empty):
                yield outbox.get(timeout=0.05)

    def ack(response: Any) -> None:
        """ACK as Envoy does (SotW sends the next update only once the last one is ACKed)."""
        if kind == "delta":
            outbox.put(
                discovery_pb2.DeltaDiscoveryRequest(
                    type_url=response.type_url, response_nonce=response.nonce
                )
            )
            return
        names = asked[response.type_url].resource_names if response.type_url in asked else []
        outbox.put(
            sotw_request(
                response.type_url,
                names,
                version_info=response.version_info,
                response_nonce=response.nonce,
            )
        )

    chan = channel.open()
    try:
        if kind == "sds":
            method = sds_pb2_grpc.SecretDiscoveryServiceStub(chan).StreamSecrets
        elif kind == "delta":
            method = ads_pb2_grpc.AggregatedDiscoveryServiceStub(chan).DeltaAggregatedResources
        else:
            method = ads_pb2_grpc.AggregatedDiscoveryServiceStub(chan).StreamAggregatedResources
        auth = (("authorization", f"Bearer {token}"),) if token else ()
        stream = method(send(), metadata=auth)
        outcome = Outcome(OPEN)
        ended = threading.Event()

        def read() -> None:
            try:
                if consume:
                    for response in stream:
                        outcome.responses.append(_summary(response))
                        ack(response)
                outcome.code, outcome.details = stream.code().name, stream.details() or ""
            except grpc.RpcError as exc:
                outcome.code, outcome.details = exc.code().name, exc.details() or ""
            finally:
                ended.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if until is None:
            ended.wait(wait)
        else:
            while not (ended.wait(0.05) or until.is_set()):
                pass
        result = Outcome(outcome.code, outcome.details, list(outcome.responses))
        if not ended.is_set():
            result.code = OPEN
        release.set()
        stream.cancel()
        reader.join(5)
        return result
    finally:
        release.set()
        chan.close()


def attack(attempts: Mapping[str, Attempt]) -> dict[str, Outcome]:
    """Run the attempts at once (each named by what it tries); their outcomes by name."""
    if not attempts:
        return {}
    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        futures = {what: pool.submit(attempt) for what, attempt in attempts.items()}
        return {what: future.result() for what, future in futures.items()}


def _main(spec: dict[str, Any]) -> None:
    channel = Channel(spec["address"], spec.get("ca", ""), spec.get("plaintext", False))
    release = threading.Event()
    lock = threading.Lock()

    def one(i: int, c: dict[str, Any]) -> None:
        outcome = call(
            Channel(c["address"], channel.ca, channel.plaintext) if "address" in c else channel,
            c["node"],
            [
                (delta_request if c.get("kind") == "delta" else sotw_request)(
                    c.get("type_url", SECRET), c.get("names", ["identity_cert"])
                )
            ],
            token=c.get("token", ""),
            metadata=c.get("metadata"),
            kind=c.get("kind", "sotw"),
            wait=c.get("wait", 5.0),
            idle=bool(c.get("idle")),
            until=release if c.get("idle") else None,
        )()
        with lock:
            print(json.dumps({"call": i, **asdict(outcome)}), flush=True)

    def stdin_closed() -> None:
        sys.stdin.read()
        release.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    with ThreadPoolExecutor(max_workers=len(spec["calls"])) as pool:
        for future in [pool.submit(one, i, c) for i, c in enumerate(spec["calls"])]:
            future.result()


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
