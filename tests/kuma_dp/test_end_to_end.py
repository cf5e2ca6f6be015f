"""The seed's pair for real: the bootstrap server and the xDS service in this process, and two
`kuma-dp run` processes each starting a real Envoy. backend-1's outbound :OUT reaches redis-1's
inbound, whose workload is a tiny local HTTP server; TCP access logs flow through backend-1's
kuma-dp sink to a TCP backend. Prints the time from `kuma-dp run` to the first proxied request."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from kuma import tokens
from kuma.wiring import Core
from services.xds.service import XdsService
from tests.apply import apply
from tests.bootstrap.servers import dataplane, make_config, open_test_core, serve_bootstrap
from tests.kuma_dp.harness import serve_catalog, start_dp
from tests.waiting import wait_until
from tests.xds_ads.harness import Backend, free_port, get, shared_loop

pytestmark = pytest.mark.envoy

ENVOY_ARGS = ("--", "--concurrency", "1")


class LineCollector:
    """A TCP access-log backend: collects every line it receives."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn, conn.makefile("r") as lines:
            self.lines.extend(line.rstrip("\n") for line in lines)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def control_plane() -> Iterator[tuple[Core, str]]:
    """(core, catalog URL): xDS on an OS-picked port, a bootstrap server pointing at it, and
    an API catalog naming the bootstrap server and requiring tokens."""
    cfg = make_config()
    cfg = replace(
        cfg,
        xds_server=replace(
            cfg.xds_server,
            grpc_port=0,
            address="127.0.0.1",
            dataplane_status_flush_interval=timedelta(milliseconds=200),
        ),
        change_feed=replace(cfg.change_feed, debounce=timedelta(milliseconds=10)),
    )
    core = open_test_core(cfg)
    loop = shared_loop()
    xds = XdsService(cfg, core)
    asyncio.run_coroutine_threadsafe(xds.start(), loop).result(10)
    bootstrap = serve_bootstrap(make_config(xds_port=xds.port), core)
    catalog = serve_catalog(bootstrap.url, token_api=True)
    try:
        yield core, catalog.url
    finally:
        catalog.stop()
        bootstrap.stop()
        asyncio.run_coroutine_threadsafe(xds.stop(), loop).result(20)
        core.close()


def _stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"kuma-dp did not stop on SIGTERM:\n{log.read_text()}") from None


def test_seed_pair_through_two_envoys(control_plane, tmp_path):
    core, cp_address = control_plane
    workload, collector = Backend("PONG"), LineCollector()
    redis_port, out_port = free_port(), free_port()
    apply(
        core,
        f"""
type: Mesh
name: default
logging:
  backends:
  - name: collector
    format: '%START_TIME% backend->%UPSTREAM_CLUSTER% sent=%BYTES_SENT% got=%BYTES_RECEIVED%'
    tcp: {{address: 127.0.0.1:{collector.port}}}
---
type: TrafficLog
mesh: default
name: everything
sources: [{{match: {{service: '*'}}}}]
destinations: [{{match: {{service: '*'}}}}]
conf: {{backend: collector}}
""",
    )
    apply(core, dataplane("redis-1", "redis", f"127.0.0.1:{redis_port}:{workload.port}"))
    apply(
        core,
        dataplane(
            "backend-1", "backend", f"127.0.0.1:{free_port()}:{free_port()}", f"redis@{out_port}"
        ),
    )
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def kuma_dp(name: str, admin_port: int) -> subprocess.Popen[bytes]:
        token = tmp_path / f"{name}.token"
        token.write_text(tokens.issue(core.store, "default", name))
        log = tmp_path / f"{name}.log"
        proc = start_dp(
            "--name", name, "--cp-address", cp_address, "--dataplane-token-file", str(token),
            "--admin-port", str(admin_port), "--config-dir", str(tmp_path / name), *ENVOY_ARGS,
            log=log,
        )  # fmt: skip
        procs.append((proc, log))
        return proc

    try:
        redis_admin = free_port()
        kuma_dp("redis-1", redis_admin)
        wait_until(lambda: get(redis_admin).strip() != "", 15, "redis-1's Envoy admin")

        started = time.monotonic()
        backend = kuma_dp("backend-1", free_port())
        wait_until(lambda: get(out_port) == "PONG", 15, "PONG through both Envoys")
        elapsed = time.monotonic() - started
        print(f"\nkuma-dp run -> first proxied request: {elapsed * 1000:.0f} ms")
        assert elapsed < 5.0

        line = wait_until(lambda: collector.lines and collector.lines[0], 10, "an access log line")
        print(f"access log line: {line}")
        assert "backend->redis" in line and "sent=" in line, line

        assert (tmp_path / "backend-1" / "bootstrap.yaml").stat().st_mode & 0o777 == 0o600
        assert _stop(backend, procs[1][1]) == 0  # SIGTERM: Envoy stopped, clean exit
        with pytest.raises(OSError):
            get(out_port)
        assert not Path("/tmp/kuma-access-logs-backend-1-default.sock").exists()
    finally:
        for proc, log in procs:
            _stop(proc, log)
        workload.stop()
        collector.close()


def _admin_stats_closed_by_envoy(port: int) -> None:
    """`curl -H 'Connection: close' .../stats`: Envoy closes first, so its side of the
    connection (local port = the admin port) waits in TIME_WAIT for a minute."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass


def test_kuma_dp_restarts_on_its_admin_port_right_after_a_stop(control_plane, tmp_path):
    core, cp_address = control_plane
    apply(core, dataplane("redis-1", "redis", f"127.0.0.1:{free_port()}:{free_port()}"))
    token = tmp_path / "token"
    token.write_text(tokens.issue(core.store, "default", "redis-1"))
    admin = free_port()
    args = ("--name", "redis-1", "--cp-address", cp_address, "--dataplane-token-file", str(token),
            "--admin-port", str(admin))  # fmt: skip
    for attempt in ("first", "second"):
        log = tmp_path / f"{attempt}.log"
        proc = start_dp(*args, "--config-dir", str(tmp_path / attempt), *ENVOY_ARGS, log=log)
        try:
            wait_until(lambda p=proc: p.poll() is None and get(admin) != "", 15, "Envoy's admin")
            _admin_stats_closed_by_envoy(admin)
        finally:
            assert _stop(proc, log) == 0, log.read_text()
