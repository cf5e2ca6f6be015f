"""A production WSGI server (waitress) running in a background thread: how `kuma-cp run` and the
tests serve the API and diagnostics apps in-process (gunicorn cannot be embedded)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

log = logging.getLogger(__name__)


class ThreadedWsgiServer:
    """Bind on construction (so a busy port fails at once), serve on `start()`, stop on `stop()`."""

    def __init__(self, app: Any, host: str, port: int, *, name: str, threads: int = 8):
        self.name = name
        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="kuma",
            clear_untrusted_proxy_headers=True,
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        try:
            self._server.run()
        except Exception:
            log.exception("%s stopped with an error", self.name)

    def start(self) -> None:
        self._thread.start()
        log.info("%s listening on %s", self.name, self.url)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection; the serving loop then ends."""
        server = self._server
        wasyncore.close_all(server._map)  # the listener, the trigger, open connections
        server.task_dispatcher.shutdown()
        if self._thread.is_alive():
            self._thread.join(timeout)
