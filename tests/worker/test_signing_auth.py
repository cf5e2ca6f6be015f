"""Who may ask the split worker to sign, against the real `kuma-worker` on RabbitMQ (its own
vhost) and Postgres: a client without the worker key gets no certificate, whatever it sends; a
reply that is not the worker's is refused by the client, and a chain that does not answer the
request is refused by the xDS side (`issue_identity`), so no identity is issued."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from kuma import ca
from kuma.edge.worker_client import (
    RPC_EXCHANGE,
    SERVICE_NAME,
    WorkerAuthError,
    WorkerReplyError,
    WorkerRpcClient,
    make_proof,
    reply_mac,
    worker_key,
)
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, decode_spec
from kuma.store.memory import MemoryStore
from kuma.wiring import open_core
from services.xds.sds.identities import issue_identity
from tests.conftest import fresh_database
from tests.worker.conftest import Worker, cfg_of, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

MESH_NAME = "secure"


@pytest.fixture(scope="module")
def worker(
    run_id: str, amqp_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("signing-auth")
    with fresh_database(f"kuma_test_{run_id}_signauth") as pg:
        # the worker caps lifetimes to its own sdsServer.certificateLifetime
        env = worker_env(pg, amqp_uri, tmp, KUMA_SDS_SERVER_CERTIFICATE_LIFETIME="2h")
        proc = Worker(env, tmp / "worker.log")
        try:
            proc.wait_healthy()
            core = open_core(cfg_of(env))
            try:
                spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
                core.manager.create(Resource(MESH, MESH_NAME, MESH_NAME, spec))
            finally:
                core.close()
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="module")
def key(worker: Worker) -> bytes:
    core = open_core(cfg_of(worker.env))
    try:
        return worker_key(core.store)
    finally:
        core.close()


@pytest.fixture(scope="module")
def replica(worker: Worker, amqp_uri: str, key: bytes) -> Iterator[WorkerRpcClient]:
    """What an xDS replica holds: a client with the worker key."""
    with WorkerRpcClient(amqp_uri, timeout=10, key=key) as rpc:
        yield rpc


@pytest.fixture(scope="module")
def forger(worker: Worker, amqp_uri: str) -> Iterator[WorkerRpcClient]:
    """Anyone else who can publish to the broker."""
    with WorkerRpcClient(amqp_uri, timeout=10) as rpc:
        yield rpc


def csr_for(service: str) -> str:
    return ca.workload_csr(ca.new_private_key(), MESH_NAME, service).decode()


def wait_for_log(worker: Worker, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log():
        assert time.monotonic() < deadline, f"{text!r} not in the worker's log:\n{worker.log()}"
        time.sleep(0.05)


def raw_call(amqp_uri: str, routing_key: str, body: dict[str, Any]) -> dict[str, Any]:
    """One nameko-protocol call published by plain kombu (no kuma code), and its reply."""
    exchange = Exchange(RPC_EXCHANGE, type="topic", durable=True)
    reply_key = uuid.uuid4().hex
    replies: list[dict[str, Any]] = []
    queue = Queue(
        f"forger-{reply_key}",
        exchange=exchange,
        routing_key=reply_key,
        exclusive=True,
        auto_delete=True,
    )
    with Connection(amqp_uri) as conn:

        def got(payload: Any, message: Any) -> None:
            message.ack()
            replies.append(payload)

        with conn.Consumer(queue, callbacks=[got], accept=["json"]):
            conn.Producer(serializer="json").publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                reply_to=reply_key,
                correlation_id=uuid.uuid4().hex,
                declare=[exchange],
            )
            deadline = time.monotonic() + 10
            while not replies:
                assert time.monotonic() < deadline, "no reply"
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.5)
    return replies[0]


def test_a_plain_publisher_without_the_key_gets_no_certificate(
    worker: Worker, amqp_uri: str, forger: WorkerRpcClient
) -> None:
    # through our own client, without a key
    with pytest.raises(WorkerAuthError, match="no proof"):
        forger.sign(MESH_NAME, "admin", csr_for("admin"), 365 * 24 * 3600)
    with pytest.raises(WorkerAuthError):
        forger.mesh_ca(MESH_NAME)
    # by hand, with plain kombu, as the issue's attacker did (the old call shape) ...
    reply = raw_call(
        amqp_uri,
        f"{SERVICE_NAME}.sign",
        {"args": [MESH_NAME, "admin", csr_for("admin"), 3600], "kwargs": {}},
    )
    assert reply["result"] is None
    assert reply["error"]["exc_type"] == "WorkerAuthError"
    # ... and with a proof made with a guessed key
    args = [MESH_NAME, "admin", csr_for("admin"), 3600]
    proof = make_proof(b"guessed".ljust(32, b"!"), "sign", args)
    reply = raw_call(amqp_uri, f"{SERVICE_NAME}.sign", {"args": args, "kwargs": {"proof": proof}})
    assert reply["result"] is None
    assert "MAC is wrong" in reply["error"]["value"]
    wait_for_log(worker, "refused sign call for mesh 'secure', service 'admin'")
    assert "BEGIN CERTIFICATE" not in str(reply)


def test_replayed_stale_and_rebound_proofs_are_refused(
    worker: Worker, replica: WorkerRpcClient, key: bytes
) -> None:
    args = [MESH_NAME, "web", csr_for("web"), 3600]
    proof = make_proof(key, "sign", args)
    answer = replica.call("sign", *args, proof=proof)  # the genuine call
    assert answer["mac"] == reply_mac(key, proof["mac"], answer["result"])
    with pytest.raises(WorkerAuthError, match="replay"):
        replica.call("sign", *args, proof=proof)
    # the proof of one call does not cover other arguments (another service, a longer life)
    for other in ([MESH_NAME, "admin", csr_for("admin"), 3600], [*args[:3], 10**7]):
        with pytest.raises(WorkerAuthError, match="MAC is wrong"):
            replica.call("sign", *other, proof=make_proof(key, "sign", args))
    stale = make_proof(key, "sign", args, now=time.time() - 3600)
    with pytest.raises(WorkerAuthError, match="timestamp"):
        replica.call("sign", *args, proof=stale)


def test_a_replica_gets_its_certificate_capped_to_the_configured_lifetime(
    replica: WorkerRpcClient,
) -> None:
    key = ca.new_private_key()
    csr = ca.workload_csr(key, MESH_NAME, "web")
    chain = replica.sign(MESH_NAME, "web", csr, 365 * 24 * 3600)
    leaf = ca.check_workload_chain(
        chain.encode(), key.public_key(), MESH_NAME, "web", replica.mesh_ca(MESH_NAME).encode()
    )
    assert leaf.not_valid_after_utc - datetime.now(UTC) <= timedelta(hours=2)
    # end to end, the xDS side's path
    identity = issue_identity(replica, MESH_NAME, "web", 3600, 80)
    assert identity.service == "web"


class RogueWorker:
    """A consumer on the broker answering calls for `service` with its own CA's certificates
    (a man in the middle, or a rogue consumer), without the worker key."""

    def __init__(self, amqp_uri: str, service: str) -> None:
        self.amqp_uri = amqp_uri
        self.service = service
        self.store = MemoryStore()
        spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
        self.store.create(Resource(MESH, MESH_NAME, MESH_NAME, spec))
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _answer(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if method == "sign":
            mesh, service, csr, ttl = args
            result = ca.sign_workload(self.store, mesh, service, csr.encode(), ttl).decode()
        else:
            result = ca.mesh_ca_bundle(self.store, args[0]).decode()
        return {"result": result, "mac": "0" * 64}

    def _serve(self) -> None:
        exchange = Exchange(RPC_EXCHANGE, type="topic", durable=True)
        queue = Queue(
            f"rpc-{self.service}",
            exchange=exchange,
            routing_key=f"{self.service}.*",
            auto_delete=True,
        )
        with Connection(self.amqp_uri) as conn:
            producer = conn.Producer(serializer="json")

            def handle(body: Any, message: Any) -> None:
                message.ack()
                method = message.delivery_info["routing_key"].split(".", 1)[1]
                result = self._answer(method, body["args"], body["kwargs"])
                producer.publish(
                    {"result": result, "error": None},
                    exchange=exchange,
                    routing_key=message.properties["reply_to"],
                    correlation_id=message.properties["correlation_id"],
                )

            with conn.Consumer(queue, callbacks=[handle], accept=["json"]):
                self.ready.set()
                while not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        conn.drain_events(timeout=0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


def test_a_reply_without_the_workers_mac_is_refused(amqp_uri: str, key: bytes) -> None:
    rogue = RogueWorker(amqp_uri, "rogue_worker")
    try:
        with WorkerRpcClient(amqp_uri, service="rogue_worker", timeout=10, key=key) as client:
            with pytest.raises(WorkerReplyError, match="MAC is wrong"):
                client.mesh_ca(MESH_NAME)
            with pytest.raises(WorkerReplyError, match="MAC is wrong"):
                issue_identity(client, MESH_NAME, "web", 3600, 80)
    finally:
        rogue.stop()


class SwappingReplica:
    """A path that changes the worker's genuine (MAC-checked) answers: the certificate of
    another service, or of another key. What only the xDS side's own check can catch."""

    def __init__(self, replica: WorkerRpcClient, swap: str) -> None:
        self.replica = replica
        self.swap = swap

    def sign(self, mesh: str, service: str, csr_pem: bytes, ttl_seconds: float) -> str:
        other = "admin" if self.swap == "service" else service
        return self.replica.sign(mesh, other, csr_for(other), ttl_seconds)

    def mesh_ca(self, mesh: str) -> str:
        return self.replica.mesh_ca(mesh)


@pytest.mark.parametrize("swap", ["service", "key"])
def test_a_chain_that_does_not_answer_the_request_is_refused_by_xds(
    replica: WorkerRpcClient, swap: str
) -> None:
    with pytest.raises(ca.CertificateReplyError):
        issue_identity(SwappingReplica(replica, swap), MESH_NAME, "web", 3600, 80)


def test_worker_log_has_refusals_but_no_traceback(worker: Worker) -> None:
    text = worker.log()
    assert "refused sign call" in text
    assert "Traceback" not in text, text
    leaf_or_key = ("BEGIN CERTIFICATE", "PRIVATE KEY")
    assert not any(marker in text for marker in leaf_or_key)
