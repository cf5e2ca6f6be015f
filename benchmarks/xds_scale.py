"""Scale: N dataplanes over two xDS replicas on this machine, and the curve as N grows.

    python -m benchmarks.xds_scale [--sizes 1000,3000,5000,10000] [--replicas 2] [--clients 8]

Each replica is its own process (`--serve`): the xDS engine over a memory store holding the
whole mesh (as every replica reads the whole mesh from the shared store), plaintext, insights
flushed every 600 s. The N light ADS clients (benchmarks.xds_client, in `--clients` processes)
are split evenly over the replicas, all opened at once. Measured per size:
- `connect_s`: from opening the first stream to the last stream holding its full config;
- a mesh-wide change (the `backend` HealthCheck, which changes every dataplane's cluster),
  written to every replica at the same moment, as the shared store's change feed would: p50/p99
  from the write to each stream's last response, and the replicas' CPU seconds for it;
- `rss_kib_per_dataplane`: the replicas' resident memory growth from before the storm to after
  the quiet collection that follows it, per connected dataplane (plaintext: no TLS buffers).
Writes benchmarks/results/xds_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

from benchmarks.change_kinds import dataplane, health_check
from benchmarks.xds_changes import Engine
from benchmarks.xds_convergence import RESULTS, percentile, rss_bytes, spawn


def serve(n: int) -> None:
    """One replica: prints its address; `rss` prints its RSS; `change K` writes the K-th
    HealthCheck and prints the CPU seconds spent until `cpu`; EOF stops it."""
    engine = Engine(mtls=False)
    for resource in (health_check(10), *(dataplane(i) for i in range(n))):
        engine.apply("upsert", resource)
    print(engine.address, flush=True)
    cpu0 = 0.0
    for line in sys.stdin:
        word, *rest = line.split()
        if word == "rss":
            print(rss_bytes(), flush=True)
        elif word == "change":
            cpu0 = engine.cpu()
            engine.apply("upsert", health_check(int(rest[0])))
            print("written", flush=True)
        elif word == "cpu":
            print(engine.cpu() - cpu0, flush=True)
    engine.close()


def ask(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def run_size(n: int, replicas: int, clients: int) -> dict[str, Any]:
    servers = [
        spawn([sys.executable, "-m", "benchmarks.xds_scale", "--serve", str(n)])
        for _ in range(replicas)
    ]
    addresses = [s.stdout.readline().strip() for s in servers if s.stdout is not None]
    time.sleep(2.0)
    rss0 = [int(ask(s, "rss")) for s in servers]
    procs, per = [], -(-n // clients)
    started = time.monotonic()
    for k, first in enumerate(range(0, n, per)):
        argv = [sys.executable, "-m", "benchmarks.xds_client", addresses[k % replicas]]
        procs.append(spawn(argv + [str(first), str(min(per, n - first)), "7", "--record"]))
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    connect_s = time.monotonic() - started
    time.sleep(max(5.0, n / 1000))  # past the quiet collection after the storm
    rss = [int(ask(s, "rss")) for s in servers]
    written = time.time()
    for s in servers:
        assert s.stdin is not None
        s.stdin.write("change 7\n")
        s.stdin.flush()
    for s in servers:
        assert s.stdout is not None and s.stdout.readline().strip() == "written"
    time.sleep(max(3.0, n / 300))
    cpu = sum(float(ask(s, "cpu")) for s in servers)
    latencies = []
    for p in procs:
        out, _ = p.communicate("", timeout=300)
        for times in json.loads(out.strip().splitlines()[-1])["times"].values():
            after = [t for t in times if t >= written]
            if after:
                latencies.append((max(after) - written) * 1000)
    for s in servers:
        s.communicate("", timeout=300)
    return {
        "dataplanes": n,
        "replicas": replicas,
        "connect_s": round(connect_s, 1),
        "converged": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "cpu_s_per_change": round(cpu, 2),
        "rss_kib_per_dataplane": round((sum(rss) - sum(rss0)) / 1024 / n, 1),
        "rss_mib_per_replica": [round(r / 2**20) for r in rss],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="1000,3000,5000,10000")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    rows = []
    for n in args.sizes.split(","):
        rows.append(run_size(int(n), args.replicas, args.clients))
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    (RESULTS / "xds_scale.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
