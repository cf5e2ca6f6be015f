"""xDS convergence: how fast a mesh-wide change reaches N connected dataplanes.

    python -m benchmarks.xds_convergence [--sizes 100,1000,5000] [--clients 8] [--envoys 2]

One xDS service (this process, its own asyncio loop thread) over a memory store with the
in-process change feed; N light ADS clients in `--clients` subprocesses (benchmarks.xds_client)
that ACK like Envoy, plus `--envoys` real Envoys. The change is one HealthCheck written through
the resource manager (the API's write path): it changes the `backend` cluster of every
dataplane. Measured from the write's commit to each client's ACK of the new cluster:
p50/p99/max; CPU seconds the xDS process spent on the change; RSS per connected dataplane.
Writes benchmarks/results/xds_convergence.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from kuma.config import load_config
from kuma.resources import wire
from kuma.wiring import ensure_default_mesh, open_core
from services.xds.loop_thread import LoopThread
from services.xds.service import XdsService

RESULTS = Path(__file__).parent / "results"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dataplane(i: int) -> dict:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": f"dp-{i}",
        "networking": {
            "inbound": [
                {
                    "interface": f"10.{i // 65000 % 250}.{i // 250 % 250}.{i % 250 + 1}:8080:80",
                    "tags": {"service": "backend" if i % 10 == 0 else f"svc-{i % 50}"},
                }
            ],
            "outbound": [{"interface": ":10001", "service": "backend"}],
        },
    }


def health_check(interval: int) -> dict:
    return {
        "type": "HealthCheck",
        "mesh": "default",
        "name": "backend-hc",
        "sources": [{"match": {"service": "*"}}],
        "destinations": [{"match": {"service": "backend"}}],
        "conf": {
            "activeChecks": {
                "interval": f"{interval}s",
                "timeout": "1s",
                "unhealthyThreshold": 3,
                "healthyThreshold": 1,
            }
        },
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_size(n: int, clients: int) -> dict:
    base = load_config(env={})
    cfg = replace(
        base,
        xds_server=replace(
            base.xds_server,
            grpc_port=0,
            address="127.0.0.1",
            dataplane_status_flush_interval=timedelta(seconds=5),
        ),
        change_feed=replace(base.change_feed, debounce=timedelta(milliseconds=20)),
    )
    core = open_core(cfg)
    ensure_default_mesh(cfg, core.manager)
    for i in range(n):
        core.manager.upsert(wire.from_json(dataplane(i)))
    core.manager.upsert(wire.from_json(health_check(10)))
    loop = LoopThread("xds-bench")
    service = XdsService(cfg, core)
    loop.run(service.start())
    rss_before = rss_bytes()
    marker = 7
    procs = []
    per = n // clients
    started = time.monotonic()
    for c in range(clients):
        count = per if c < clients - 1 else n - per * (clients - 1)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.xds_client",
                    f"127.0.0.1:{service.port}",
                    str(c * per),
                    str(count),
                    str(marker),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    connect_s = time.monotonic() - started
    time.sleep(1.0)  # let insights flush and the loop go idle
    rss_per_dp = (rss_bytes() - rss_before) / n
    cpu0 = cpu_seconds()
    committed = time.time()
    core.manager.upsert(wire.from_json(health_check(marker)))
    # Wait for the clients to report: close stdin once the xDS loop has gone quiet.
    time.sleep(max(2.0, n / 500))
    cpu = cpu_seconds() - cpu0
    seen: dict[str, float] = {}
    for p in procs:
        out, _ = p.communicate("", timeout=120)
        seen.update(json.loads(out.strip().splitlines()[-1]))
    loop.run(service.stop())
    loop.close()
    core.close()
    latencies = [(t - committed) * 1000 for t in seen.values()]
    return {
        "dataplanes": n,
        "converged": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.mean(latencies), 1) if latencies else None,
        "cpu_seconds_per_change": round(cpu, 3),
        "rss_kib_per_dataplane": round(rss_per_dp / 1024, 1),
        "connect_all_seconds": round(connect_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    rows = [run_size(int(n), args.clients) for n in args.sizes.split(",")]
    header = list(rows[0])
    print("  ".join(f"{h:>22}" for h in header))
    for row in rows:
        print("  ".join(f"{row[h]!s:>22}" for h in header))
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "rows": rows,
    }
    (RESULTS / "xds_convergence.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
