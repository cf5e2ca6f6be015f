"""Dataplane start-up: time from `kuma-dp run` to the first request proxied through its Envoy.

    python -m benchmarks.dp_startup [--runs 10]

In this process: a memory store, the xDS service (its own asyncio loop thread) and the bootstrap
service (embedded waitress), token verification on. A tiny HTTP workload sits behind redis-1,
whose kuma-dp + Envoy stay up. Each run starts `kuma-dp run` for backend-1 (a fresh process and
Envoy, `--concurrency 1`), polls backend-1's outbound every 5 ms until the workload answers
through both Envoys, then stops it with SIGTERM. Prints p50/min/max and writes
benchmarks/results/dp_startup.json.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from kuma import tokens
from kuma.config import KumaCpConfig, load_config
from kuma.edge.wsgi_server import ThreadedWsgiServer
from kuma.netutil import free_port
from kuma.resources import wire
from kuma.wiring import Core, ensure_default_mesh, open_core
from services.bootstrap.app import create_app
from services.xds.loop_thread import LoopThread
from services.xds.service import XdsService

RESULTS = Path(__file__).parent / "results"
KUMA_DP = str(Path(sys.executable).with_name("kuma-dp"))


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
        return str(r.read().decode())


def wait_until(check: Any, timeout: float, interval: float = 0.005) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError("timed out")


def workload() -> int:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"PONG")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def config() -> KumaCpConfig:
    base = load_config(env={})
    return replace(
        base,
        xds_server=replace(base.xds_server, grpc_port=0, address="127.0.0.1"),
        change_feed=replace(base.change_feed, debounce=timedelta(milliseconds=10)),
    )


def dataplane(name: str, service: str, inbound: str, outbound_port: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {"inbound": [{"interface": inbound, "tags": {"service": service}}]},
    }
    if outbound_port:
        doc["networking"]["outbound"] = [{"interface": f":{outbound_port}", "service": "redis"}]
    return doc


def start_dp(core: Core, url: str, name: str, tmp: Path, admin_port: int) -> Any:
    token = tmp / f"{name}.token"
    token.write_text(tokens.issue(core.store, "default", name))
    args = [KUMA_DP, "--log-level", "off", "run", "--name", name]
    args += ["--bootstrap-server-url", url, "--dataplane-token-file", str(token)]
    args += ["--admin-port", str(admin_port), "--", "--concurrency", "1", "-l", "error"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: Any) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    cfg = config()
    core = open_core(cfg)
    ensure_default_mesh(cfg, core.manager)
    loop = LoopThread("xds")
    xds = XdsService(cfg, core)
    loop.run(xds.start())
    params = replace(cfg.bootstrap_server.params, xds_host="127.0.0.1", xds_port=xds.port)
    bootstrap_cfg = replace(cfg, bootstrap_server=replace(cfg.bootstrap_server, params=params))
    server = ThreadedWsgiServer(create_app(bootstrap_cfg, core), "127.0.0.1", 0, name="bootstrap")
    server.start()

    redis_port, out_port = free_port(), free_port()
    for doc in (
        dataplane("redis-1", "redis", f"127.0.0.1:{redis_port}:{workload()}"),
        dataplane("backend-1", "backend", f"127.0.0.1:{free_port()}:{free_port()}", out_port),
    ):
        core.manager.upsert(wire.from_json(doc))
    timings: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_dp(core, server.url, "redis-1", Path(tmp), free_port())
        try:
            wait_until(lambda: socket.create_connection(("127.0.0.1", redis_port), 1), 15)
            for _ in range(args.runs):
                started = time.monotonic()
                proc = start_dp(core, server.url, "backend-1", Path(tmp), free_port())
                try:
                    wait_until(lambda: get(out_port) == "PONG", 15)
                    timings.append(time.monotonic() - started)
                finally:
                    stop(proc)
        finally:
            stop(redis)
    server.stop()
    loop.run(xds.stop())
    core.close()

    ms = sorted(t * 1000 for t in timings)
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "all_ms": [round(t, 1) for t in ms],
    }
    print(f"{'runs':>6} {'p50 ms':>8} {'min ms':>8} {'max ms':>8}")
    print(f"{out['runs']:>6} {out['p50_ms']:>8} {out['min_ms']:>8} {out['max_ms']:>8}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dp_startup.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
