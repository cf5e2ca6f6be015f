"""One port, two protocols: TLS and plain HTTP told apart on the same listening socket.

A TLS connection opens with a handshake record, whose first byte is 0x16; an HTTP/1.x request
opens with the letters of its method. The server peeks at that byte (`MSG_PEEK`, so nothing is
consumed), then either completes a TLS handshake or reads plain HTTP from the socket as it is.

Servers built on this (`kuma.edge.gunicorn_dual` under gunicorn, `kuma.edge.wsgi_server`'s
`DualProtocolWsgiServer` in `kuma-cp run`) keep to three rules:
- the peek and the handshake run in a worker thread, never in the accept loop, and wait at most
  a deadline: a silent or slow client costs one thread for that long, never the listener;
- a connection with no byte yet goes back to the server's poller instead of holding a thread;
- `wsgi.url_scheme` is "https" exactly when the connection completed a TLS handshake, whatever
  the request itself claims (an absolute-form URI, X-Forwarded-Proto): applications may rely on
  it to know whether a request crossed the network encrypted.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl
import tempfile
import time
from pathlib import Path

from kuma.server_tls import ServerCertificate

TLS_HANDSHAKE_RECORD = 0x16
HANDSHAKE_TIMEOUT = 10.0
# How long a worker thread waits for a new connection's first byte before handing it back to
# the server's poller. A client normally sends at once; any longer wait is a thread that a flood
# of silent connections could keep busy.
FIRST_BYTE_WAIT = 0.1


def server_context(
    certificate: ServerCertificate, socket_class: type[ssl.SSLSocket] | None = None
) -> ssl.SSLContext:
    """A TLS server context (1.2 and later) presenting `certificate`; `socket_class` is the
    `ssl.SSLSocket` subclass its wrapped connections get."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # `ssl` loads keys from files only: a private directory, removed as soon as they are read.
    with tempfile.TemporaryDirectory(prefix="kuma-tls-") as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        for path, data in ((cert_path, certificate.cert_pem), (key_path, certificate.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        context.load_cert_chain(cert_path, key_path)
    if socket_class is not None:
        context.sslsocket_class = socket_class
    return context


def wait_readable(sock: socket.socket, timeout: float) -> bool:
    """Whether `sock` has a byte (or its end) to read within `timeout` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(max(timeout, 0.0)))


def opens_with_tls(sock: socket.socket) -> bool:
    """Peek at the first byte (under the socket's own timeout). ConnectionAbortedError when the
    peer closed without sending one."""
    first = sock.recv(1, socket.MSG_PEEK)
    if not first:
        raise ConnectionAbortedError("the client closed the connection before sending anything")
    return first[0] == TLS_HANDSHAKE_RECORD


def _handshake(conn: ssl.SSLSocket, deadline: float) -> None:
    # Non-blocking steps against one deadline: a per-read timeout alone would let a client that
    # trickles its ClientHello a byte at a time hold the thread indefinitely.
    previous = conn.gettimeout()
    conn.setblocking(False)
    try:
        while True:
            try:
                conn.do_handshake()
                return
            except ssl.SSLWantReadError:
                event = selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                event = selectors.EVENT_WRITE
            remaining = deadline - time.monotonic()
            with selectors.DefaultSelector() as selector:
                selector.register(conn, event)
                if remaining <= 0 or not selector.select(remaining):
                    raise TimeoutError("the TLS handshake did not complete in time")
    finally:
        conn.settimeout(previous)


def negotiate(
    sock: socket.socket, context: ssl.SSLContext, timeout: float = HANDSHAKE_TIMEOUT
) -> tuple[socket.socket, bool]:
    """(the socket to speak HTTP over, whether it is TLS) for a freshly accepted connection.

    Waits at most `timeout` for the first byte and again for the whole handshake. Raises OSError
    (ssl.SSLError, TimeoutError, ConnectionAbortedError...) when the connection is not usable;
    the caller then closes `sock` as usual. After a handshake `sock` is closed and the returned
    TLS socket replaces it; either keeps `sock`'s timeout.
    """
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        tls = opens_with_tls(sock)
    finally:
        sock.settimeout(previous)
    if not tls:
        return sock, False
    # TLS over a duplicate descriptor: when the handshake fails, `sock` is still whole for the
    # server's usual close; when it succeeds, the TLS socket alone holds the connection.
    conn = context.wrap_socket(sock.dup(), server_side=True, do_handshake_on_connect=False)
    try:
        _handshake(conn, time.monotonic() + timeout)
    except BaseException:
        conn.close()
        raise
    sock.close()
    return conn, True
