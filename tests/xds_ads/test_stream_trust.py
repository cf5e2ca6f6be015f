"""Who a stream is, and how much it may ask: a real grpc.aio ADS server with TLS and the real
dataplane-token check, and real gRPC clients (each one an attacker or the honest dataplane)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from kuma import tokens
from kuma.dataplane_auth import DataplaneAuthenticator
from kuma.server_tls import self_signed
from kuma.store.memory import MemoryStore
from services.xds.ads import types
from services.xds.ads.cache import NodeSnapshot, SnapshotCache
from services.xds.ads.server import StreamPolicy, start_ads_server
from services.xds.ads.stream import MAX_XDS_NAME_LENGTH, StreamLimits, StreamSlots
from services.xds.auth import StreamAuthenticator
from tests.waiting import wait_until
from tests.xds_ads.harness import RecordingCallbacks, shared_loop

pytestmark = pytest.mark.slow

VICTIM = "default.web-1"
CERT = self_signed(["localhost", "127.0.0.1"])
LIMITS = StreamLimits(
    queue_size=4,
    names_per_request=50,
    names_per_subscription=80,
    first_request_timeout=1.0,
    name_bytes=20_000,
)


class Server:
    def __init__(self, *, trust_loopback: bool, max_streams: int = 100) -> None:
        self.store = MemoryStore()
        tokens.ensure_signing_key(self.store)
        auth = DataplaneAuthenticator(self.store, enabled=True, trust_loopback=trust_loopback)
        self.cache = SnapshotCache()
        self.callbacks = RecordingCallbacks()
        self.loop = shared_loop()
        policy = StreamPolicy(StreamAuthenticator(auth), LIMITS, StreamSlots(max_streams))
        start = start_ads_server(
            "127.0.0.1:0",
            self.cache,
            self.callbacks,
            policy=policy,
            tls=(CERT.cert_pem, CERT.key_pem),
        )
        self.server, self.port = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.slots = policy.slots
        snapshot = NodeSnapshot.build(
            {types.CLUSTER: {"backend": cluster_pb2.Cluster(name="backend")}}
        )
        self.loop.call_soon_threadsafe(self.cache.set, VICTIM, snapshot)

    def token(self, node_id: str) -> str:
        mesh, name = node_id.split(".", 1)
        return tokens.issue(self.store, mesh, name)

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.run(self.server.stop(0))


@pytest.fixture()
def server() -> Iterator[Server]:
    s = Server(trust_loopback=False)
    yield s
    s.stop()


def request(
    node_id: str | None = VICTIM,
    type_url: str = types.CLUSTER,
    names: Sequence[str] = (),
) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names))
    if node_id is not None:
        req.node.id = node_id
    return req


async def converse(
    port: int,
    requests: Sequence[Any],
    token: str | None = None,
    *,
    delta: bool = False,
    tls: bool = True,
    wait: float = 2.0,
) -> tuple[list[Any], grpc.StatusCode | None, str]:
    """Send `requests` on one stream; (responses received, final status, its details)."""
    address = f"127.0.0.1:{port}"
    options = [("grpc.ssl_target_name_override", "localhost")]
    channel = (
        grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(CERT.cert_pem), options)
        if tls
        else grpc.aio.insecure_channel(address)
    )
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    responses: list[Any] = []
    async with channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        call = (stub.DeltaAggregatedResources if delta else stub.StreamAggregatedResources)(
            metadata=metadata
        )
        try:
            for req in requests:
                await call.write(req)

            async def read() -> None:
                async for response in call:
                    responses.append(response)

            await asyncio.wait_for(read(), wait)
        except TimeoutError:
            call.cancel()
            return responses, None, ""
        except grpc.aio.AioRpcError as exc:
            return responses, exc.code(), exc.details() or ""
        return responses, await call.code(), await call.details()


def test_no_credential_gets_nothing(server: Server):
    got, code, details = server.run(converse(server.port, [request()]))
    assert (got, code) == ([], grpc.StatusCode.UNAUTHENTICATED)
    assert "missing" in details


def test_another_dataplanes_valid_token_is_permission_denied(server: Server):
    got, code, details = server.run(
        converse(server.port, [request()], server.token("default.web-2"))
    )
    assert (got, code) == ([], grpc.StatusCode.PERMISSION_DENIED)
    assert "web-2" in details


def test_own_token_gets_config_and_the_stream_stays_bound(server: Server):
    token = server.token(VICTIM)
    got, code, _ = server.run(converse(server.port, [request()], token))
    assert code is None and len(got) == 1  # still open, config received
    # the same stream later claiming another node is cut before anything else is sent
    got, code, details = server.run(
        converse(server.port, [request(), request("default.web-2", types.LISTENER)], token)
    )
    assert len(got) == 1 and code == grpc.StatusCode.PERMISSION_DENIED
    assert "belongs to default.web-1" in details


def test_a_plaintext_client_is_refused(server: Server):
    got, code, _ = server.run(converse(server.port, [request()], tls=False))
    assert got == [] and code == grpc.StatusCode.UNAVAILABLE


def test_a_forged_token_is_unauthenticated(server: Server):
    other = MemoryStore()  # a key of the attacker's own
    forged = tokens.issue(other, "default", "web-1")
    got, code, details = server.run(converse(server.port, [request()], forged))
    assert (got, code) == ([], grpc.StatusCode.UNAUTHENTICATED)
    assert "invalid" in details


@pytest.mark.parametrize(
    ("req", "code"),
    [
        (request(type_url="type.googleapis.com/made.up.Type"), grpc.StatusCode.INVALID_ARGUMENT),
        (request(names=[f"n{i}" for i in range(51)]), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (request(names=["x" * (MAX_XDS_NAME_LENGTH + 1)]), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
    ids=["invented-type", "too-many-names", "name-too-long"],
)
def test_requests_past_the_bounds_close_the_stream(server: Server, req: Any, code: Any):
    got, status, _ = server.run(converse(server.port, [req], server.token(VICTIM)))
    assert (got, status) == ([], code)


def test_delta_subscriptions_are_bounded_as_a_whole(server: Server):
    token = server.token(VICTIM)
    reqs = []
    for i in range(3):  # 3 x 40 names, each request under the per-request cap of 50
        req = discovery_pb2.DeltaDiscoveryRequest(
            type_url=types.ENDPOINT, resource_names_subscribe=[f"c{i}-{j}" for j in range(40)]
        )
        if i == 0:
            req.node.id = VICTIM
        reqs.append(req)
    _, status, details = server.run(converse(server.port, reqs, token, delta=True))
    assert status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "subscribed" in details


def test_names_held_by_a_stream_are_bounded_in_bytes_over_all_types(server: Server):
    token = server.token(VICTIM)
    # 40 names of 300 characters: 12,000 bytes, within the 20,000 of one stream ...
    eds = request(type_url=types.ENDPOINT, names=[f"{i:03}" + "x" * 297 for i in range(40)])
    got, status, _ = server.run(converse(server.port, [eds], token))
    assert status is None
    # ... but not twice over, on another type of the same stream
    rds = request(None, types.ROUTE, [f"{i:03}" + "y" * 297 for i in range(40)])
    got, status, details = server.run(converse(server.port, [eds, rds], token))
    assert status == grpc.StatusCode.RESOURCE_EXHAUSTED and "bytes of resource names" in details


def test_a_silent_stream_is_closed_after_the_first_request_timeout(server: Server):
    _, status, _ = server.run(converse(server.port, [], server.token(VICTIM), wait=5))
    assert status == grpc.StatusCode.DEADLINE_EXCEEDED


def test_streams_per_process_are_capped():
    s = Server(trust_loopback=True, max_streams=3)
    try:

        async def scenario() -> tuple[list[Any], Any]:
            # three honest streams hold their slots; the fourth is refused
            held = [asyncio.create_task(converse(s.port, [request()], wait=1.5)) for _ in range(3)]
            await asyncio.sleep(0.5)
            fourth = await converse(s.port, [request()], wait=1.0)
            return [await t for t in held], fourth

        held, fourth = s.run(scenario())
        assert all(code is None and len(got) == 1 for got, code, _ in held)
        assert fourth[1] == grpc.StatusCode.RESOURCE_EXHAUSTED
        wait_until(lambda: s.slots.open == 0, 5, "every slot given back")
    finally:
        s.stop()


def test_silent_streams_make_room_for_a_dataplane_when_the_server_is_full():
    s = Server(trust_loopback=False, max_streams=3)
    try:

        async def scenario() -> tuple[list[Any], Any]:
            # three connections that never say who they are take every slot ...
            silent = [asyncio.create_task(converse(s.port, [], wait=3)) for _ in range(3)]
            await asyncio.sleep(0.5)
            # ... and a dataplane with its token still gets in, evicting the oldest of them
            honest = await converse(s.port, [request()], s.token(VICTIM), wait=0.5)
            return [await t for t in silent], honest

        silent, honest = s.run(scenario())
        assert honest[1] is None and len(honest[0]) == 1
        codes = sorted(str(code) for _, code, _ in silent)
        assert codes.count(str(grpc.StatusCode.RESOURCE_EXHAUSTED)) == 1, codes
    finally:
        s.stop()


def test_same_host_trust_lets_a_local_stream_in_without_a_token():
    s = Server(trust_loopback=True)
    try:
        got, code, _ = s.run(converse(s.port, [request()]))
        assert code is None and len(got) == 1
        # a presented token is still checked, even locally
        _, code, _ = s.run(converse(s.port, [request()], s.token("default.web-2")))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        s.stop()
