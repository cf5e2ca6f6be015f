"""A gunicorn gthread worker that serves TLS and plain HTTP on the same port
(`kuma.edge.dual_listener`):

    worker_class = "kuma.edge.gunicorn_dual.DualProtocolWorker"

The app gunicorn loads must offer `server_certificate() -> kuma.server_tls.ServerCertificate`;
each worker asks it once, after loading the app (so after the fork, through the app's own
store). Leave gunicorn's `certfile`/`keyfile` unset: this worker wraps TLS itself, per
connection, in the thread that serves it.

Timeouts. gthread keeps a connection that has sent nothing in its poller (closed after
`keepalive`), but only after 5 s in a thread; here after `FIRST_BYTE_WAIT`. Once a byte has
arrived gthread reads with no timeout at all, so a client that stalls mid-request would hold a
thread for good. Here the peek and the handshake wait at most `IO_TIMEOUT` together, and every
later read or write at most `IO_TIMEOUT` each.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from kuma.edge.dual_listener import FIRST_BYTE_WAIT, negotiate, server_context

IO_TIMEOUT = 10.0


class _Bounded:
    """gthread flips a connection to blocking (no timeout) before each request: keep a bound."""

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(IO_TIMEOUT)  # type: ignore[attr-defined]
        else:
            super().setblocking(False)  # type: ignore[misc]

    def recv(self, *args: Any) -> bytes:
        try:
            return super().recv(*args)  # type: ignore[misc, no-any-return]
        except TimeoutError:
            # gthread logs any socket error but a reset with a traceback; a client gone quiet
            # is an ordinary disconnection.
            raise ConnectionResetError(
                errno.ECONNRESET, f"the client sent nothing for {IO_TIMEOUT:g} s"
            ) from None


class _BoundedSocket(_Bounded, socket.socket):
    pass


class _BoundedSSLSocket(_Bounded, ssl.SSLSocket):
    pass


class _DualConn(TConn):  # type: ignore[misc]
    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any, tls: Any):
        self.sock: socket.socket
        super().__init__(cfg, _BoundedSocket(fileno=sock.detach()), client, server)
        self.tls_context: ssl.SSLContext = tls
        self.tls = False

    def wait_for_data(self, timeout: float) -> bool:
        # gthread waits 5 s in a thread for a new connection's first byte: a handful of silent
        # connections would take every thread. Hand them to the poller sooner.
        return bool(super().wait_for_data(min(timeout, FIRST_BYTE_WAIT)))

    def init(self) -> None:
        """In the worker thread, once the first byte is there: TLS or not, then gthread's own
        plain HTTP/1.x set-up over the resulting socket."""
        if self.initialized:
            return
        try:
            self.sock, self.tls = negotiate(self.sock, self.tls_context, IO_TIMEOUT)
        except (OSError, ValueError) as exc:
            # gthread's handle() closes the connection and logs this at debug level.
            raise StopIteration(f"no usable connection from {self.client}: {exc}") from None
        super().init()


class DualProtocolWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with TLS chosen per connection by its first byte."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.cfg.is_ssl:
            raise RuntimeError(
                "DualProtocolWorker wraps TLS itself: leave gunicorn's certfile/keyfile unset"
            )
        self.cfg.set("sendfile", False)  # sendfile(2) would write around the TLS layer
        self.tls_context: ssl.SSLContext | None = None

    def load_wsgi(self) -> None:
        super().load_wsgi()
        certificate = getattr(self.wsgi, "server_certificate", None)
        if certificate is None:
            raise RuntimeError(
                "DualProtocolWorker needs an app with server_certificate(): "
                f"{type(self.wsgi).__name__} has none"
            )
        self.tls_context = server_context(certificate(), _BoundedSSLSocket)

    def accept(self, listener: socket.socket) -> None:
        """gthread's accept, making a `_DualConn`: no I/O here, the peek is the thread's."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client_sock.setblocking(True)
        conn = _DualConn(
            self.cfg, client_sock, client_addr, listener.getsockname(), self.tls_context
        )
        self.enqueue_req(conn)

    def handle_request(self, req: Any, conn: _DualConn) -> Any:
        # The transport alone says https; gunicorn would also take it from a trusted proxy's
        # X-Forwarded-Proto, which a plain loopback connection could send.
        req.scheme = "https" if conn.tls else "http"
        return super().handle_request(req, conn)
