"""MADS (5676) for real: the service of an xDS process over a memory store and its in-process
change feed, and real gRPC clients. Assignments are pushed when a Mesh or Dataplane changes
(nothing on a timer, nothing read while nobody watches); only the admin token, or a loopback
peer with `general.trustLoopback`, may read them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
from envoy.api.v2 import discovery_pb2
from google.rpc import status_pb2

from kuma import tokens
from kuma.admin_token import ensure_admin_token
from kuma.config import KumaCpConfig, load_config
from kuma.errors import NotFoundError, StoreUnavailableError
from kuma.resources.wire import from_json
from kuma.server_tls import self_signed
from kuma.wiring import Core, open_core
from services.xds.ads.server import StreamPolicy
from services.xds.mads.assignments import TYPE_URL
from services.xds.mads.proto import mads_pb2, mads_pb2_grpc
from services.xds.mads.service import MadsService
from tests.netns import non_loopback_address
from tests.waiting import wait_until
from tests.xds_ads.harness import shared_loop

ADMIN = "mads-test-admin-token"
CERT = self_signed(["localhost", "127.0.0.1"])


class Mads:
    """A MadsService on the shared test loop, bound to every address on a free port."""

    def __init__(self, cfg: KumaCpConfig, *, tls: bool = False) -> None:
        self.loop = shared_loop()
        self.core: Core = open_core(cfg)
        self.service = MadsService(cfg, self.core, StreamPolicy())
        self.tls = tls
        self.run(self.service.start((CERT.cert_pem, CERT.key_pem) if tls else None))
        self.port = self.service.port

    def run(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def apply(self, doc: dict[str, Any]) -> None:
        resource = from_json(doc)
        try:
            current = self.core.manager.get(resource.type, resource.mesh, resource.name)
        except NotFoundError:
            self.core.manager.create(resource)
        else:
            self.core.manager.update(replace(resource, version=current.version))

    def delete(self, kind: str, mesh: str, name: str) -> None:
        self.core.manager.delete(kind, mesh, name)

    def close(self) -> None:
        self.run(self.service.stop())
        self.core.close()


def config(**general: Any) -> KumaCpConfig:
    base = load_config(env={})
    return replace(
        base,
        xds_server=replace(base.xds_server, address="0.0.0.0"),
        monitoring_assignment_server=replace(base.monitoring_assignment_server, grpc_port=0),
        change_feed=replace(base.change_feed, debounce=base.change_feed.debounce / 5),
        general=replace(base.general, **general),
        api_server=replace(base.api_server, admin_token=ADMIN),
    )


def mesh(prometheus: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "Mesh", "name": "default"}
    if prometheus:
        doc["metrics"] = {"prometheus": {}}
    return doc


def dataplane(name: str, ip: str = "10.0.0.1", service: str = "web") -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {"inbound": [{"interface": f"{ip}:80:8080", "tags": {"service": service}}]},
    }


@pytest.fixture()
def mads() -> Iterator[Mads]:
    server = Mads(config())
    server.apply(mesh())
    server.apply(dataplane("web-1"))
    yield server
    server.close()


class Client:
    """One StreamMonitoringAssignments call, driven step by step from the test thread."""

    def __init__(
        self,
        mads: Mads,
        host: str = "127.0.0.1",
        token: str | None = None,
        ca: bytes | None = None,
    ) -> None:
        self.mads = mads
        self.target = f"{host}:{mads.port}"
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.ca = ca
        self.channel: Any = None
        self.call: Any = None
        self.last: Any = None

    async def _open(self, first: Any | None) -> None:
        if self.ca is not None:
            credentials = grpc.ssl_channel_credentials(self.ca)
            self.channel = grpc.aio.secure_channel(
                self.target, credentials, [("grpc.ssl_target_name_override", "localhost")]
            )
        else:
            self.channel = grpc.aio.insecure_channel(self.target)
        stub = mads_pb2_grpc.MonitoringAssignmentDiscoveryServiceStub(self.channel)
        self.call = stub.StreamMonitoringAssignments(metadata=self.metadata)
        self.responses: asyncio.Queue[Any] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())
        if first is None:
            return
        # a refused call is over at once: the reader hands its status to `recv`
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.call.write(first)

    async def _read(self) -> None:
        """Every response into `responses` (a read cancelled by a timeout would end the call),
        then the error that ended the call, if any."""
        try:
            async for response in self.call:
                await self.responses.put(response)
        except grpc.aio.AioRpcError as exc:
            await self.responses.put(exc)

    def open(self, first: Any = None, *, send: bool = True) -> Client:
        """Start the call and send `first` (a request of this client by default); with
        `send=False` nothing: the call's credential is checked when it opens."""
        if first is None and send:
            first = discovery_pb2.DiscoveryRequest(type_url=TYPE_URL)
            first.node.id = "test-sd"
        self.mads.run(self._open(first if send else None))
        return self

    def recv(self, timeout: float = 5.0) -> Any:
        """The next response; None if none comes within `timeout`."""

        async def read() -> Any:
            try:
                return await asyncio.wait_for(self.responses.get(), timeout)
            except TimeoutError:
                return None

        got = self.mads.run(read(), timeout + 5)
        if isinstance(got, grpc.aio.AioRpcError):
            raise got
        self.last = got
        return got

    def ack(self, nack: str = "") -> None:
        req = discovery_pb2.DiscoveryRequest(
            version_info=self.last.version_info, response_nonce=self.last.nonce, type_url=TYPE_URL
        )
        if nack:
            req.error_detail.CopyFrom(status_pb2.Status(message=nack))
        self.mads.run(self.call.write(req))

    def close(self) -> None:
        if self.channel is not None:
            self.mads.run(self.channel.close())


def names(response: Any) -> list[str]:
    out = []
    for resource in response.resources:
        assignment = mads_pb2.MonitoringAssignment()
        assert resource.type_url == TYPE_URL and resource.Unpack(assignment)
        out.append(assignment.name)
    return out


def test_assignments_are_pushed_when_dataplanes_and_meshes_change(mads: Mads):
    client = Client(mads).open()
    try:
        first = client.recv()
        assert names(first) == ["/meshes/default/dataplanes/web-1"]
        assert first.type_url == TYPE_URL and first.version_info
        client.ack()
        assert client.recv(0.5) is None  # nothing changed: nothing sent, however long

        mads.apply(dataplane("web-2", "10.0.0.2"))
        added = client.recv()
        assert names(added) == [
            "/meshes/default/dataplanes/web-1",
            "/meshes/default/dataplanes/web-2",
        ]
        assert added.version_info != first.version_info
        client.ack()

        mads.apply(dataplane("web-2", "10.0.0.3"))  # an address change is a change
        moved = client.recv()
        assignment = mads_pb2.MonitoringAssignment()
        moved.resources[1].Unpack(assignment)
        assert assignment.targets[0].labels["__address__"] == "10.0.0.3:5670"
        client.ack()

        mads.delete("Dataplane", "default", "web-1")
        assert names(client.recv()) == ["/meshes/default/dataplanes/web-2"]
        client.ack()

        mads.apply(mesh(prometheus=False))  # Prometheus off: nothing to monitor
        assert names(client.recv()) == []
        client.ack()
        mads.apply(mesh(prometheus=True))
        assert names(client.recv()) == ["/meshes/default/dataplanes/web-2"]
        client.ack()

        mads.delete("Mesh", "default", "default")
        assert names(client.recv()) == []
    finally:
        client.close()


def test_a_nack_is_not_answered_with_the_same_version(mads: Mads):
    client = Client(mads).open()
    try:
        client.recv()
        client.ack(nack="cannot use it")
        assert client.recv(0.5) is None
        mads.apply(dataplane("web-2", "10.0.0.2"))
        assert len(client.recv().resources) == 2
    finally:
        client.close()


def test_nothing_is_read_while_nobody_watches(mads: Mads):
    reconciler = mads.service.reconciler
    for i in range(5):
        mads.apply(dataplane(f"idle-{i}", f"10.0.1.{i}"))
    time.sleep(0.3)
    assert reconciler.passes == 0 and mads.service.cache.snapshot is None
    client = Client(mads).open()
    try:
        assert len(client.recv().resources) == 6
    finally:
        client.close()
    wait_until(lambda: mads.service.cache.snapshot is None, 5, "the state dropped")


def test_fetch_answers_once_and_delta_is_not_served(mads: Mads):
    async def fetch() -> Any:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{mads.port}") as channel:
            stub = mads_pb2_grpc.MonitoringAssignmentDiscoveryServiceStub(channel)
            answer = await stub.FetchMonitoringAssignments(
                discovery_pb2.DiscoveryRequest(type_url=TYPE_URL)
            )
            delta = stub.DeltaMonitoringAssignments()
            await delta.write(discovery_pb2.DeltaDiscoveryRequest(type_url=TYPE_URL))
            return answer, await delta.code()

    answer, delta_code = mads.run(fetch())
    assert names(answer) == ["/meshes/default/dataplanes/web-1"]
    assert delta_code == grpc.StatusCode.UNIMPLEMENTED


def test_another_type_url_is_refused(mads: Mads):
    client = Client(mads).open(discovery_pb2.DiscoveryRequest(type_url="type.googleapis.com/x.Y"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            client.recv()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not served" in (caught.value.details() or "")
    finally:
        client.close()


def _refused(client: Client) -> tuple[Any, str]:
    """The status a call that is refused when it opens ends with. It sends no request: a write
    racing the server's abort fails in grpc's client, which then reports its own `INTERNAL:
    Internal error from Core` instead of the server's status (seen about once in 20 runs)."""
    client.open(send=False)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            client.recv()
        return caught.value.code(), caught.value.details() or ""
    finally:
        client.close()


def test_an_unauthenticated_client_from_another_address_is_refused(mads: Mads):
    """Same-host trust is on, but the peer is not a loopback address: no assignments without
    the admin token."""
    with non_loopback_address() as address:
        code, details = _refused(Client(mads, host=address))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert "admin token" in details
        code, _ = _refused(Client(mads, host=address, token="wrong"))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        client = Client(mads, host=address, token=ADMIN).open()
        try:
            assert names(client.recv()) == ["/meshes/default/dataplanes/web-1"]
        finally:
            client.close()


def test_without_same_host_trust_only_the_admin_token_reads():
    server = Mads(config(trust_loopback=False))
    try:
        server.apply(mesh())
        server.apply(dataplane("web-1"))
        code, details = _refused(Client(server))
        assert (code, "admin token" in details) == (grpc.StatusCode.UNAUTHENTICATED, True)
        tokens.ensure_signing_key(server.core.store)
        dataplane_token = tokens.issue(server.core.store, "default", "web-1")
        code, details = _refused(Client(server, token=dataplane_token))
        assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "invalid admin token")
        client = Client(server, token=ADMIN).open()
        try:
            assert len(client.recv().resources) == 1
        finally:
            client.close()
    finally:
        server.close()


def test_the_stored_admin_token_is_accepted_when_none_is_configured():
    base = config(trust_loopback=False)
    cfg = replace(base, api_server=replace(base.api_server, admin_token=""))
    server = Mads(cfg)
    try:
        code, _ = _refused(Client(server, token="guess"))  # none stored yet
        assert code == grpc.StatusCode.UNAUTHENTICATED
        stored = ensure_admin_token(cfg, server.core.store)  # as the API does at its start
        time.sleep(0.6)  # a mismatch re-reads the store at most twice a second
        client = Client(server, token=stored).open()
        try:
            assert names(client.recv()) == []
        finally:
            client.close()
    finally:
        server.close()


def test_tls_with_the_control_planes_certificate():
    server = Mads(config(), tls=True)
    try:
        server.apply(mesh())
        server.apply(dataplane("web-1"))
        client = Client(server, ca=CERT.cert_pem).open()
        try:
            assert len(client.recv().resources) == 1
        finally:
            client.close()
        plaintext = Client(server)
        code, _ = _refused(plaintext)
        assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.close()


def test_a_store_outage_is_retried_and_clients_keep_what_they_have(mads: Mads):
    reconciler = mads.service.reconciler
    reconciler.retry_after = 0.1
    client = Client(mads).open()
    try:
        assert len(client.recv().resources) == 1
        client.ack()
        store, failures = mads.core.store, []

        class Outage:
            """The reconciler's view of the store: its first two reads fail."""

            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

            def get(self, *args: Any) -> Any:
                if len(failures) < 2:
                    failures.append(args)
                    raise StoreUnavailableError("the store is down")
                return store.get(*args)

        reconciler.store = Outage()  # type: ignore[assignment]
        mads.apply(dataplane("web-1", "10.0.0.9"))  # a write the outage hides for a while
        moved = client.recv()
        assert len(failures) == 2
        assignment = mads_pb2.MonitoringAssignment()
        moved.resources[0].Unpack(assignment)
        assert assignment.targets[0].labels["__address__"] == "10.0.0.9:5670"
    finally:
        client.close()
