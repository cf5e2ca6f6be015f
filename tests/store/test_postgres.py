"""What only the Postgres store has: migrations, its tables, its pool, an unreachable server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kuma.errors import StoreUnavailableError
from kuma.resources import registry
from kuma.resources.base import Resource
from kuma.store import PostgresStore
from kuma.store.migrate import conninfo_params, migrate, migrations, pending
from tests.conftest import PG_ADMIN_DSN
from tests.ports import free_port

pytestmark = pytest.mark.postgres


@pytest.fixture()
def fresh_dsn(run_id: str, pg_dsn: str) -> Iterator[str]:
    """A second, empty database of its own, dropped afterwards."""
    name = f"kuma_test_{run_id}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_DSN} dbname={name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN + " dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_migrations_apply_each_file_exactly_once(fresh_dsn: str) -> None:
    names = [m.name for m in migrations()]
    assert names[0] == "0001_init"
    assert pending(fresh_dsn) == names
    with pytest.raises(StoreUnavailableError, match="has not been migrated"):
        PostgresStore(fresh_dsn)

    barrier = threading.Barrier(4)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(migrate(fresh_dsn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert len(results) == 4
    assert sorted(name for result in results for name in result) == names  # once in all
    assert sorted(results, key=len)[:3] == [[], [], []]
    assert pending(fresh_dsn) == []
    assert migrate(fresh_dsn) == []
    with psycopg.connect(fresh_dsn) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [name for _, name in rows] == names
    PostgresStore(fresh_dsn).close()


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=127.0.0.1 port=1 dbname=kuma user=kuma password=s3cret-pw",
        "postgresql://kuma:s3cret-pw@127.0.0.1:1/kuma",
    ],
)
def test_unreachable_server_fails_fast_with_a_clear_message(conninfo: str) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        PostgresStore(conninfo, timeout=2.0)
    assert time.monotonic() - started < 2.0
    message = str(info.value)
    assert "host=127.0.0.1 port=1 dbname=kuma" in message
    assert "refused" in message
    assert "s3cret" not in message
    for call in (pending, migrate):
        with pytest.raises(StoreUnavailableError, match="port=1") as info:
            call(conninfo)
        assert "s3cret" not in str(info.value)


def test_secrets_live_in_their_own_table_as_bytes(empty_pg_store: Any, migrated_dsn: str) -> None:
    pg_store = empty_pg_store
    data = b"\x00\xffkey\x00"
    pg_store.create(Resource("Secret", "demo", "key", registry.decode_spec("Secret", data)))
    pg_store.create(Resource("Mesh", "demo", "demo", registry.decode_spec("Mesh", {})))
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT type, data FROM secrets").fetchall() == [("Secret", data)]
        assert conn.execute("SELECT type, spec FROM resources").fetchall() == [("Mesh", "{}")]


def test_pool_exhaustion_and_closed_store_are_unavailable(migrated_dsn: str) -> None:
    store = PostgresStore(migrated_dsn, min_size=1, max_size=1, timeout=0.3)
    store.ping()
    with (
        store._pool.connection(),  # the only connection is busy
        pytest.raises(StoreUnavailableError, match="no connection free within 0.3s"),
    ):
        store.revision()
    store.ping()
    store.close()
    with pytest.raises(StoreUnavailableError):
        store.ping()


class _Gate:
    """A TCP forwarder to the Postgres server: `cut()` is an outage (open connections are cut,
    new ones refused), `restore()` listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.1)
        self._listener, self._stop = listener, threading.Event()
        self._acceptor = threading.Thread(target=self._accept, args=(listener, self._stop))
        self._acceptor.start()

    def cut(self) -> None:
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def test_store_recovers_promptly_after_a_long_outage(migrated_dsn: str) -> None:
    """The pool's background reconnection backs off for as long as the outage lasts; the store
    must not: once the server is back, the next request gets a connection."""
    params = conninfo_params(migrated_dsn)
    gate = _Gate(params.get("host", "127.0.0.1"), int(params.get("port", "5432")))
    gate.restore()
    conninfo = psycopg.conninfo.make_conninfo(migrated_dsn, host="127.0.0.1", port=gate.port)
    store = PostgresStore(conninfo, min_size=1, max_size=2, timeout=1.0)
    try:
        store.ping()
        gate.cut()
        # A doubling back-off retries about 1, 3, 7 and 15 s after the cut (10% jitter): the
        # server back after 9-10 s would wait for the attempt at 15 s.
        outage_end = time.monotonic() + 9.0
        while time.monotonic() < outage_end:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                store.ping()
            assert time.monotonic() - started < 3.0  # an outage is answered, never waited out
            time.sleep(0.2)
        gate.restore()
        restored = time.monotonic()
        while True:
            try:
                store.ping()
                break
            except StoreUnavailableError:
                assert time.monotonic() - restored < 15.0, "the store never recovered"
                time.sleep(0.1)
        recovered = time.monotonic() - restored
        assert recovered < 2.5, f"the store took {recovered:.1f}s to recover"
        store.revision()
    finally:
        store.close()
        gate.cut()
