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

    client = WorkerRpcClient("amqp://guest:guest@127.0.0.1:5672/")
    chain_pem = client.sign("default", "backend", csr_pem, 3600)   # kuma.ca.CertificateAuthority
    bundle_pem = client.mesh_ca("default")
    client.close()
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.exceptions import ChannelError

from kuma import errors

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


# Modules whose KumaError classes a remote error may be rebuilt as (never import by remote name).
_ERROR_MODULES = ("kuma.errors", "kuma.ca")


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
    """RPC client of `kuma_worker`; also a `CertificateAuthority` (`sign`, `mesh_ca`)."""

    def __init__(
        self,
        amqp_uri: str,
        *,
        service: str = SERVICE_NAME,
        timeout: float = 10.0,
        exchange: str = RPC_EXCHANGE,
    ) -> None:
        self.amqp_uri = amqp_uri
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
        return str(self.call("sign", mesh, service, csr_pem, ttl_seconds))

    def mesh_ca(self, mesh: str) -> str:
        """PEM trust bundle of `mesh`."""
        return str(self.call("mesh_ca", mesh))

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
