"""Production WSGI servers running in a background thread: how `kuma-cp run` and the tests
serve apps in-process (gunicorn cannot be embedded).

- `ThreadedWsgiServer` (waitress): plain HTTP, for the API and diagnostics.
- `DualProtocolWsgiServer` (cheroot, which can do TLS where waitress cannot): TLS and plain HTTP
  on one port (`kuma.edge.dual_listener`), for the bootstrap server.
"""

from __future__ import annotations

import logging
import ssl
import threading
from abc import ABC, abstractmethod
from typing import Any

from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi
from cheroot.makefile import MakeFile
from waitress import wasyncore
from waitress.server import create_server

from kuma.edge.dual_listener import FIRST_BYTE_WAIT, negotiate, server_context, wait_readable
from kuma.server_tls import ServerCertificate

log = logging.getLogger(__name__)


class _BackgroundServer(ABC):
    """Bound on construction (so a busy port fails at once), serving on a daemon thread from
    `start()`, stopped by `stop()`. Subclasses say how their server runs, stops and is named."""

    name: str

    def __init__(self, name: str):
        self.name = name
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @abstractmethod
    def _serve_forever(self) -> None: ...

    @abstractmethod
    def _close(self) -> None:
        """Close the listener and every connection: the serving loop then ends."""

    def _serve(self) -> None:
        try:
            self._serve_forever()
        except Exception:
            log.exception("%s stopped with an error", self.name)

    @property
    @abstractmethod
    def listening(self) -> str:
        """What `start()` logs."""

    def start(self) -> None:
        self._thread.start()
        log.info("%s listening on %s", self.name, self.listening)

    def stop(self, timeout: float = 5.0) -> None:
        self._close()
        if self._thread.is_alive():
            self._thread.join(timeout)


class ThreadedWsgiServer(_BackgroundServer):
    """Plain HTTP on waitress."""

    def __init__(self, app: Any, host: str, port: int, *, name: str, threads: int = 8):
        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="kuma",
            clear_untrusted_proxy_headers=True,
        )
        super().__init__(name)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> str:
        return self.url

    def _serve_forever(self) -> None:
        self._server.run()

    def _close(self) -> None:
        server = self._server
        wasyncore.close_all(server._map)  # the listener, the trigger, open connections
        server.task_dispatcher.shutdown()


class _DualConnection(cheroot_server.HTTPConnection):  # type: ignore[misc]
    """Negotiates TLS or plain HTTP at its first `communicate()`, in a worker thread (cheroot's
    own TLS adapter handshakes in the accept loop, where one slow client stalls every other)."""

    negotiated = False

    def communicate(self) -> bool:
        if not self.negotiated:
            if not wait_readable(self.socket, FIRST_BYTE_WAIT):
                # Keep it open on the selector, not in this thread; the selector closes it after
                # the server's `timeout` of silence.
                return True
            self.negotiated = True
            server: _DualServer = self.server
            try:
                sock, tls = negotiate(self.socket, server.tls_context, server.timeout)
            except (OSError, ValueError) as exc:
                log.debug("no usable connection from %s: %s", self.remote_addr, exc)
                return False
            if tls:
                self.socket = sock
                self.rfile = MakeFile(sock, "rb", self.rbufsize)
                self.wfile = MakeFile(sock, "wb", self.wbufsize)
            # Merged into every request's environ last: the transport alone says https (an
            # absolute-form request URI would otherwise set the scheme).
            self.ssl_env = (
                {"wsgi.url_scheme": "https", "HTTPS": "on"} if tls else {"wsgi.url_scheme": "http"}
            )
        return bool(super().communicate())


class _DualServer(cheroot_wsgi.Server):  # type: ignore[misc]
    ConnectionClass = _DualConnection
    tls_context: ssl.SSLContext

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level, "%s", msg, exc_info=traceback)


class DualProtocolWsgiServer(_BackgroundServer):
    """TLS (with `certificate`) and plain HTTP on one port, told apart per connection.
    `timeout` bounds the first byte, the handshake, and then each read and write."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        certificate: ServerCertificate,
        *,
        name: str,
        threads: int = 8,
        timeout: int = 10,
        max_body_bytes: int = 1024 * 1024,
    ):
        server = _DualServer((host, port), app, numthreads=threads, timeout=timeout)
        server.tls_context = server_context(certificate)
        server.software = "kuma"
        server.max_request_header_size = 64 * 1024
        server.max_request_body_size = max_body_bytes
        server.prepare()  # binds and listens, starts the worker threads
        self._server = server
        self.host, self.port = server.bind_addr[0], int(server.bind_addr[1])
        super().__init__(name)

    @property
    def listening(self) -> str:
        return f"{self.host}:{self.port} (TLS and plain HTTP)"

    @property
    def url(self) -> str:
        """The https URL (plain http works on the same port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def _serve_forever(self) -> None:
        self._server.serve()

    def _close(self) -> None:
        self._server.stop()
