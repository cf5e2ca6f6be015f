"""An attacker's gRPC clients for the xDS (5678) and SDS (5677) ports: each call sends what it is
told, reads what the server gives for a while, and says how the call ended and what it got
(above all: any private key). Usable in-process (asyncio) and as a program, for an attacker in a
network namespace:

    python -m tests.security.attacker '{"address": "10.200.0.1:5678", "ca": "...PEM...",
        "calls": [{"node": "default.web-1"}, {"node": "default.web-1", "idle": true}]}'

prints one JSON line per call as it ends (an `idle` call sends nothing and ends when stdin
closes, or at the server's first-request timeout)."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
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
OPEN = "OPEN"  # the call was still open when the attacker stopped waiting


def server_ca(host: str, port: int) -> str:
    """The certificate the server presents (self-signed: its own CA), as an attacker sees it."""
    return ssl.get_server_certificate((host, port), timeout=5)


@dataclass
class Outcome:
    code: str  # a grpc.StatusCode name, "OK" (ended by the server without error), or OPEN
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


@dataclass
class Channel:
    """A channel to `address`: TLS trusting `ca` (the server's name taken to be localhost, as
    an attacker dialling an address the certificate does not name would), or plaintext."""

    address: str
    ca: str = ""
    plaintext: bool = False

    def open(self) -> grpc.aio.Channel:
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
        if self.plaintext:
            return grpc.aio.insecure_channel(self.address, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca.encode())
        options.append(("grpc.ssl_target_name_override", "localhost"))
        return grpc.aio.secure_channel(self.address, credentials, options=options)


async def call(
    channel: Channel | grpc.aio.Channel,
    node_id: str,
    requests: list[Any] | None = None,
    *,
    token: str = "",
    metadata: Mapping[str, Any] | None = None,
    kind: str = "sotw",
    wait: float = 5.0,
    idle: asyncio.Event | None = None,
) -> Outcome:
    """One stream: `requests` sent in a row (the node on the first; default: ask for
    `identity_cert`), then responses read until the call ends or `wait` seconds pass. `kind`:
    sotw or delta (ADS), sds (SecretDiscoveryService). `idle`: send nothing at all and hold the
    stream open until the event is set (or the server ends it)."""
    own = isinstance(channel, Channel)
    chan = channel.open() if isinstance(channel, Channel) else channel
    try:
        if kind == "delta":
            method = ads_pb2_grpc.AggregatedDiscoveryServiceStub(chan).DeltaAggregatedResources
            requests = requests if requests is not None else [delta_request()]
        elif kind == "sds":
            method = sds_pb2_grpc.SecretDiscoveryServiceStub(chan).StreamSecrets
            requests = requests if requests is not None else [sotw_request()]
        else:
            method = ads_pb2_grpc.AggregatedDiscoveryServiceStub(chan).StreamAggregatedResources
            requests = requests if requests is not None else [sotw_request()]
        if requests and not requests[0].HasField("node"):
            requests[0].node.CopyFrom(node(node_id, metadata))
        done = asyncio.Event()

        async def send() -> AsyncIterator[Any]:
            if idle is None:
                for request in requests:
                    yield request
            await done.wait()  # half-closing would end the stream: hold it open instead

        auth = (("authorization", f"Bearer {token}"),) if token else ()
        stream = method(send(), metadata=auth)
        outcome = Outcome(OPEN)

        async def read() -> None:
            async for response in stream:
                outcome.responses.append(_summary(response))

        reader = asyncio.create_task(read())
        waits: set[asyncio.Task[Any]] = {reader}
        if idle is not None:
            waits.add(asyncio.create_task(idle.wait()))
        try:
            await asyncio.wait(waits, timeout=None if idle else wait, return_when="FIRST_COMPLETED")
            if reader.done():
                exc = reader.exception()
                if isinstance(exc, grpc.aio.AioRpcError):
                    outcome.code, outcome.details = exc.code().name, exc.details() or ""
                elif exc is not None:
                    raise exc
                else:
                    outcome.code = "OK"
        finally:
            done.set()
            stream.cancel()
            for task in waits:
                task.cancel()
        return outcome
    finally:
        if own:
            await chan.close()


def attack(calls: Mapping[str, Awaitable[Outcome]]) -> dict[str, Outcome]:
    """Run the calls at once (each named by what it tries); their outcomes by name."""

    async def everything() -> dict[str, Outcome]:
        outcomes = await asyncio.gather(*calls.values())
        return dict(zip(calls, outcomes, strict=True))

    return asyncio.run(everything())


async def _main(spec: dict[str, Any]) -> None:
    channel = Channel(spec["address"], spec.get("ca", ""), spec.get("plaintext", False))
    release = asyncio.Event()

    async def one(i: int, c: dict[str, Any]) -> None:
        outcome = await call(
            channel,
            c["node"],
            [sotw_request(c.get("type_url", SECRET), c.get("names", ["identity_cert"]))],
            token=c.get("token", ""),
            metadata=c.get("metadata"),
            kind=c.get("kind", "sotw"),
            wait=c.get("wait", 5.0),
            idle=release if c.get("idle") else None,
        )
        print(json.dumps({"call": i, **asdict(outcome)}), flush=True)

    async def stdin_closed() -> None:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        release.set()

    watcher = asyncio.create_task(stdin_closed())
    await asyncio.gather(*(one(i, c) for i, c in enumerate(spec["calls"])))
    watcher.cancel()


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))
