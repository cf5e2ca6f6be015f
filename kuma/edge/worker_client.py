"""A plain-Python (kombu, no nameko, no eventlet) RPC client of the `kuma_worker` nameko service,
safe to use from any thread of any process: the xDS service (grpc.aio) calls it from an executor
thread.

It speaks nameko 2.x's AMQP RPC protocol: a JSON `{"args": [...], "kwargs": {...}}` message to the
topic exchange `nameko-rpc` with routing key `kuma_worker.<method>`, `reply_to` naming this
client's exclusive reply queue and a `correlation_id`; the reply is `{"result": ..., "error":
{"exc_type", "exc_path", "exc_args", "value"} | null}`. Publishes are confirmed and mandatory, so
a call with no worker queue declared fails at once (WorkerUnavailableError) instead of waiting.

Remote errors come back as the product's own errors when the worker raised one of `kuma.errors`
or `kuma.ca` (a bad CSR: `kuma.ca.CertificateRequestError` with the worker's message; a missing
Mesh: MeshNotFoundError), otherwise as RemoteError. A call that gets no answer within `timeout`
raises WorkerUnavailableError.

One connection publishes (under a lock), another, on a daemon thread, consumes replies; when the
broker goes away, pending calls fail at once and the consumer reconnects with back-off.

    client = WorkerRpcClient("amqp://guest:guest@127.0.0.1:5672/", key=lambda: worker_key(store))
    chain_pem = client.sign("default", "backend", csr_pem, 3600)   # kuma.ca.CertificateAuthority
    bundle_pem = client.mesh_ca("default")
    client.close()

**Who may ask** (docs/security.md, "Worker"). `sign` and `mesh_ca` calls carry a proof that the
caller is a replica of this control plane: an HMAC-SHA256, under the worker key, of the call's
exact arguments, a timestamp and a random nonce (`make_proof`). The worker key is 32 random
bytes stored as the Secret `worker-rpc-key` in the reserved mesh `kuma.system`, created by the
first process that needs it (`worker_key`): only processes holding the store's credentials can
read it, and those can read the mesh CA keys anyway, so it adds no new trust root. The worker
(`ProofVerifier`) refuses a call whose MAC is wrong, whose timestamp is more than
`PROOF_WINDOW_SECONDS` away from its clock, or whose nonce it has already seen
(`WorkerAuthError`, logged). Its answer is `{"result": ..., "mac": ...}`, the MAC binding the
result to the request's own MAC, so a reply from anyone without the key (a rogue consumer on the
broker) or to another request is refused here (`WorkerReplyError`). `ping` needs no proof.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.exceptions import ChannelError

from kuma import errors, system_secrets
from kuma.store.base import ResourceStore

log = logging.getLogger("kuma.worker.client")

SERVICE_NAME = "kuma_worker"
RPC_EXCHANGE = "nameko-rpc"
_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


class WorkerUnavailableError(errors.KumaError):
    """The worker could not be reached, or did not answer in time."""

    http_status = 503
    details = "Worker unavailable"


class RemoteError(errors.KumaError):
    """The worker failed with an error that is not one of the product's own."""

    def __init__(self, exc_type: str, value: str):
        self.exc_type = exc_type
        self.value = value
        super().__init__(f"{exc_type}: {value}" if value else exc_type)


class WorkerAuthError(errors.KumaError):
    """A call to the worker without a valid proof that its caller is a replica of this control
    plane (no proof, a wrong MAC, a stale timestamp, a replayed nonce)."""

    http_status = 403


class WorkerReplyError(errors.KumaError):
    """A reply that does not come from a worker holding the worker key, or not for this call."""


# Modules whose KumaError classes a remote error may be rebuilt as (never import by remote name).
_ERROR_MODULES = ("kuma.errors", "kuma.ca", "kuma.edge.worker_client")

# --- the worker key and the proofs made with it -----------------------------------------------

KEY_MESH = system_secrets.MESH
KEY_NAME = "worker-rpc-key"
KEY_BYTES = 32
# How far a call's timestamp may be from the worker's clock (either way): clock skew between
# hosts plus the time a call waits in the queue. Nonces are remembered this long.
PROOF_WINDOW_SECONDS = 60.0
_PROOF_VERSION = 1


def stored_worker_key(store: ResourceStore) -> bytes | None:
    """The worker key, if one was stored."""
    return system_secrets.read(store, KEY_NAME)


def worker_key(store: ResourceStore) -> bytes:
    """The worker key, created and stored first when missing (the first creator wins a race)."""
    return system_secrets.ensure(store, KEY_NAME, lambda: secrets.token_bytes(KEY_BYTES))


def _mac(key: bytes, doc: dict[str, Any]) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, text.encode("ascii"), hashlib.sha256).hexdigest()


def _request_doc(method: str, args: list[Any], ts: Any, nonce: Any) -> dict[str, Any]:
    # Exactly the JSON values that travel: the worker recomputes it from what it received.
    return {"v": _PROOF_VERSION, "method": method, "args": args, "ts": ts, "nonce": nonce}


def make_proof(
    key: bytes, method: str, args: list[Any], *, now: float | None = None
) -> dict[str, Any]:
    """The `proof` keyword argument of a call of `method` with positional `args`."""
    ts = time.time() if now is None else now
    nonce = secrets.token_hex(16)
    return {"ts": ts, "nonce": nonce, "mac": _mac(key, _request_doc(method, args, ts, nonce))}


def reply_mac(key: bytes, request_mac: str, result: Any) -> str:
    """The MAC of the answer `result` to the request whose proof's MAC was `request_mac`."""
    return _mac(key, {"v": _PROOF_VERSION, "reply": request_mac, "result": result})


class Verified:
    """A call whose proof was valid: `reply(result)` is the worker's answer to it."""

    def __init__(self, key: bytes, request_mac: str) -> None:
        self._key = key
        self.request_mac = request_mac

    def reply(self, result: Any) -> dict[str, Any]:
        return {"result": result, "mac": reply_mac(self._key, self.request_mac, result)}


class ProofVerifier:
    """The worker's check of a call's proof. `load_key` reads the worker key from the store; it
    is read again (at most every `reload_after` seconds) when a MAC does not match, so a
    replaced key is picked up without a restart. Seen nonces are kept for the window only, and
    only for calls whose MAC was valid: a caller without the key adds nothing."""

    def __init__(
        self,
        load_key: Callable[[], bytes],
        *,
        window: float = PROOF_WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
        reload_after: float = 5.0,
    ) -> None:
        self._load_key = load_key
        self.window = window
        self._clock = clock
        self._reload_after = reload_after
        self._key = load_key()
        self._loaded_at = clock()
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, method: str, args: list[Any], proof: Any) -> Verified:
        """The verified call, or WorkerAuthError saying why not."""
        if proof is None:
            raise WorkerAuthError(f"{method}: the call carries no proof (a worker key's MAC)")
        if not isinstance(proof, dict) or set(proof) != {"ts", "nonce", "mac"}:
            raise WorkerAuthError(f"{method}: the proof is malformed")
        ts, nonce, mac = proof["ts"], proof["nonce"], proof["mac"]
        if (
            isinstance(ts, bool)
            or not isinstance(ts, int | float)
            or not math.isfinite(ts)
            or not isinstance(nonce, str)
            or not 16 <= len(nonce) <= 64
            or not isinstance(mac, str)
            or len(mac) != 64
        ):
            raise WorkerAuthError(f"{method}: the proof is malformed")
        doc = _request_doc(method, args, ts, nonce)
        key = self._matching_key(doc, mac)
        if key is None:
            raise WorkerAuthError(f"{method}: the proof's MAC is wrong (not made with the key)")
        now = self._clock()
        if abs(now - ts) > self.window:
            raise WorkerAuthError(
                f"{method}: the proof's timestamp is {now - ts:+.0f}s old "
                f"(accepted: within {self.window:g}s)"
            )
        with self._lock:
            for old in [n for n, t in self._seen.items() if t < now - 2 * self.window]:
                del self._seen[old]
            if nonce in self._seen:
                raise WorkerAuthError(f"{method}: the proof was already used (a replay)")
            self._seen[nonce] = now
        return Verified(key, mac)

    def _matching_key(self, doc: dict[str, Any], mac: str) -> bytes | None:
        key = self._key
        if hmac.compare_digest(_mac(key, doc), mac):
            return key
        now = self._clock()
        if now - self._loaded_at < self._reload_after:
            return None
        self._loaded_at = now
        try:
            self._key = key = self._load_key()
        except errors.KumaError as exc:
            log.warning("cannot read the worker key again: %s", exc)
            return None
        return key if hmac.compare_digest(_mac(key, doc), mac) else None


def remote_error(error: dict[str, Any]) -> errors.KumaError:
    """The exception a nameko error payload stands for."""
    exc_type = str(error.get("exc_type") or "Exception")
    path = str(error.get("exc_path") or "")
    value = str(error.get("value") or "")
    module, _, name = path.rpartition(".")
    cls = None
    if module in _ERROR_MODULES:
        cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.KumaError)):
        return RemoteError(exc_type, value)
    if issubclass(cls, errors.ValidationError):
        return cls(details=value)
    if cls.__init__ is errors.KumaError.__init__:  # message-only errors
        return cls(value)
    exc = cls.__new__(cls)
    Exception.__init__(exc, value)  # keeps the class (and its http_status), not its fields
    if isinstance(exc, errors.MeshNotFoundError):
        exc.violations = [errors.Violation("mesh", value)]
    return exc


class WorkerRpcClient:
    """RPC client of `kuma_worker`; also a `CertificateAuthority` (`sign`, `mesh_ca`).

    `key` is the worker key (`worker_key(store)`), or a function returning it (called at the
    first authenticated call, and again once when the worker refuses a proof: the key was
    replaced). Without one, `sign` and `mesh_ca` are sent without a proof and refused.
    Calls from several threads share the connection; each waits for its own reply."""

    # The worker serves up to 10 calls at once (nameko's default): leave it room for others.
    concurrent_calls = 8

    def __init__(
        self,
        amqp_uri: str,
        *,
        service: str = SERVICE_NAME,
        timeout: float = 10.0,
        exchange: str = RPC_EXCHANGE,
        key: bytes | Callable[[], bytes] | None = None,
    ) -> None:
        self.amqp_uri = amqp_uri
        self._key_source = key
        self._key: bytes | None = key if isinstance(key, bytes) else None
        self.service = service
        self.timeout = timeout
        self._exchange = Exchange(exchange, type="topic", durable=True)
        self._reply_key = uuid.uuid4().hex
        self._pending: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._publisher: Connection | None = None
        probe = Connection(amqp_uri)
        self._connection_errors: tuple[type[BaseException], ...] = (
            OSError,
            *probe.connection_errors,
        )
        self._where = str(probe.as_uri())  # password masked by kombu

    # --- the CertificateAuthority the xDS service needs -------------------------------------

    def sign(
        self, mesh: str, service: str, csr_pem: bytes | str, ttl_seconds: float | None = None
    ) -> str:
        """PEM chain (leaf first) for a CSR of `spiffe://{mesh}/{service}`, valid
        `ttl_seconds` (the worker's default, 24h, when None)."""
        if isinstance(csr_pem, bytes):
            csr_pem = csr_pem.decode("ascii", errors="replace")
        return str(self.authenticated_call("sign", mesh, service, csr_pem, ttl_seconds))

    def mesh_ca(self, mesh: str) -> str:
        """PEM trust bundle of `mesh`."""
        return str(self.authenticated_call("mesh_ca", mesh))

    def authenticated_call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Call `method` with a proof made with the worker key, and return its result once the
        reply's MAC shows it is the worker's answer to this very call."""
        for attempt in (1, 2):
            key = self._current_key(reload=attempt == 2)
            if key is None:  # no key: the worker will refuse, and say so
                return self.call(method, *args, timeout=timeout)
            proof = make_proof(key, method, list(args))
            try:
                answer = self.call(method, *args, timeout=timeout, proof=proof)
            except WorkerAuthError:
                if attempt == 1 and callable(self._key_source):
                    continue  # the key may have been replaced: read it again, once
                raise
            if not isinstance(answer, dict) or set(answer) != {"result", "mac"}:
                raise WorkerReplyError(f"worker RPC {method}: the reply carries no MAC")
            expected = reply_mac(key, proof["mac"], answer["result"])
            if not isinstance(answer["mac"], str) or not hmac.compare_digest(
                expected, answer["mac"]
            ):
                raise WorkerReplyError(
                    f"worker RPC {method}: the reply's MAC is wrong (not the worker's answer)"
                )
            return answer["result"]
        raise AssertionError("unreachable")

    def _current_key(self, reload: bool = False) -> bytes | None:
        source = self._key_source
        if callable(source) and (self._key is None or reload):
            self._key = source()
        return self._key

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        result = self.call("ping", timeout=timeout)
        return dict(result) if isinstance(result, dict) else {"result": result}

    # --- generic call -----------------------------------------------------------------------

    def call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call `method` of the worker and wait for its answer."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._start()
        if not self._ready.wait(timeout):
            raise WorkerUnavailableError(
                f"worker RPC: cannot reach RabbitMQ at {self._where} within {timeout:g}s"
            )
        correlation_id = uuid.uuid4().hex
        future: Future[Any] = Future()
        with self._lock:
            self._pending[correlation_id] = future
        try:
            self._publish(method, list(args), kwargs, correlation_id)
            try:
                reply = future.result(max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                raise WorkerUnavailableError(
                    f"worker RPC {self.service}.{method}: no answer within {timeout:g}s"
                ) from None
        finally:
            with self._lock:
                self._pending.pop(correlation_id, None)
        if reply.get("error"):
            raise remote_error(reply["error"])
        return reply.get("result")

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._publish_lock:
            if self._publisher is not None:
                self._publisher.release()
                self._publisher = None
        self._fail_pending("client closed")

    def __enter__(self) -> WorkerRpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._consume, name="kuma-worker-rpc-replies", daemon=True
                )
                self._thread.start()

    def _publish(
        self, method: str, args: list[Any], kwargs: dict[str, Any], correlation_id: str
    ) -> None:
        body = {"args": args, "kwargs": kwargs}
        routing_key = f"{self.service}.{method}"
        for attempt in (1, 2):
            try:
                with self._publish_lock:
                    if self._publisher is None:
                        self._publisher = Connection(
                            self.amqp_uri, transport_options={"confirm_publish": True}
                        )
                    producer = self._publisher.Producer(serializer="json")
                    producer.publish(
                        body,
                        exchange=self._exchange,
                        routing_key=routing_key,
                        reply_to=self._reply_key,
                        correlation_id=correlation_id,
                        mandatory=True,
                        declare=[self._exchange],
                        retry=True,
                        retry_policy=_RETRY_POLICY,
                    )
                return
            except ChannelError as exc:
                if "NO_ROUTE" in str(exc):
                    raise WorkerUnavailableError(
                        f"worker RPC {routing_key}: no {self.service} service is listening"
                    ) from None
                failure: BaseException = exc
            except self._connection_errors as exc:
                failure = exc
            with self._publish_lock:  # a broken connection: start over once with a new one
                if self._publisher is not None:
                    self._publisher.release()
                    self._publisher = None
            if attempt == 2:
                raise WorkerUnavailableError(
                    f"worker RPC {routing_key}: cannot publish to {self._where}: {failure}"
                ) from None

    def _on_reply(self, body: Any, message: Any) -> None:
        message.ack()
        correlation_id = message.properties.get("correlation_id")
        with self._lock:
            future = self._pending.pop(correlation_id, None)
        if future is None:
            log.debug("reply for an unknown or expired call %s", correlation_id)
            return
        future.set_result(body if isinstance(body, dict) else {"result": body})

    def _fail_pending(self, reason: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerUnavailableError(f"worker RPC: {reason}"))

    def _consume(self) -> None:
        backoff = 0.2
        queue = Queue(
            f"rpc.reply-kuma-client-{self._reply_key}",
            exchange=self._exchange,
            routing_key=self._reply_key,
            exclusive=True,
            auto_delete=True,
        )
        while not self._stopping.is_set():
            conn = Connection(self.amqp_uri, heartbeat=30)
            try:
                conn.connect()
                with conn.Consumer(queue, callbacks=[self._on_reply], accept=["json"]):
                    self._ready.set()
                    backoff = 0.2
                    while not self._stopping.is_set():
                        try:
                            conn.drain_events(timeout=0.5)
                        except TimeoutError:
                            conn.heartbeat_check()
            except (*self._connection_errors, *conn.channel_errors) as exc:
                self._ready.clear()
                # the exclusive reply queue went with the connection: replies in flight are lost
                self._fail_pending(f"connection to RabbitMQ lost ({exc})")
                log.warning("worker RPC: %s; reconnecting in %.1fs", exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._ready.clear()
                conn.release()
