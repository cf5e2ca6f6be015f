"""xDS convergence: how fast a mesh-wide change reaches N connected dataplanes.

    python -m benchmarks.xds_convergence [--sizes 100,1000,5000] [--clients 8] [--envoys 2]
                                         [--mtls]

One xDS service (this process, its own asyncio loop thread) over a memory store with the
in-process change feed; N dataplanes, of which `--envoys` are real Envoys (the rest are light ADS
clients in `--clients` subprocesses, benchmarks.xds_client, that ACK like Envoy). The change is
one HealthCheck written through the resource manager (the API's write path): it changes the
`backend` cluster of every dataplane. Measured from the write's commit to each light client's
ACK of the new cluster, and to the moment each Envoy's admin `/config_dump` shows it:
p50/p99/max; when the server handed the last new Cluster response to gRPC; how long the
reconcile pass (snapshot, generation, packing) took; CPU seconds the xDS process spent on the
change, including the full garbage collection once it is quiet again; RSS per connected
dataplane.
With `--mtls` the Mesh has mTLS on (builtin CA, every dataplane holds an identity, an allow-all
TrafficPermission): the cost of mTLS is the difference between the two runs.
Writes benchmarks/results/xds_convergence[-mtls].json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks import change_kinds
from cli.kuma_dp.envoy import locate_envoy
from kuma.config import BootstrapParamsConfig, load_config
from kuma.netutil import free_port
from kuma.resources import wire
from kuma.wiring import ensure_default_mesh, open_core
from services.bootstrap.generator import BootstrapInput, build_bootstrap, to_yaml
from services.xds.ads.stream import Stream
from services.xds.loop_thread import LoopThread
from services.xds.service import XdsService

RESULTS = Path(__file__).parent / "results"


def write_results(benchmark: str, **fields: Any) -> None:
    """`benchmarks/results/{benchmark}.json`: the fields, with when and on what they were
    measured (absolute figures compare only within the hour: the VM drifts)."""
    out = {
        "benchmark": benchmark,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        **fields,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{benchmark}.json").write_text(json.dumps(out, indent=2) + "\n")


CDS_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dataplane(i: int) -> dict:
    # The change kinds' mesh without their `version` tags (this benchmark predates them).
    return change_kinds.dataplane(i, versions=False)


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


def mesh(mtls: bool) -> dict:
    out: dict = {"type": "Mesh", "name": "default"}
    if mtls:
        out["mtls"] = {"enabled": True, "ca": {"builtin": {}}}
    return out


ALLOW_ALL = {
    "type": "TrafficPermission",
    "mesh": "default",
    "name": "allow-all",
    "sources": [{"match": {"service": "*"}}],
    "destinations": [{"match": {"service": "*"}}],
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def change_rows(
    marks: list[tuple[float, float]], times: dict[str, list[float]]
) -> list[dict[str, Any]]:
    """Per change, from (when it was made, the CPU seconds it cost) and every stream's response
    times (benchmarks.xds_client --record): the streams that received anything before the next
    change (`touched`), and p50/p99 of the last response each of them received."""
    rows = []
    for k, (made, cpu) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else float("inf")
        latencies = [
            (max(t for t in ts if made <= t < end) - made) * 1000
            for ts in times.values()
            if any(made <= t < end for t in ts)
        ]
        rows.append(
            {
                "touched": len(latencies),
                "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
                "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
                "cpu_s": round(cpu, 3),
            }
        )
    return rows


class RealEnvoy:
    """One real Envoy for dataplane `dp-{index}` (own loopback ports), bootstrapped by the
    bootstrap service's generator; benchmarks.envoy_watch times it."""

    def __init__(self, index: int, xds_port: int, workdir: Path) -> None:
        self.index = index
        self.admin_port = free_port()
        self.inbound_port = free_port()
        self.outbound_port = free_port()
        params = BootstrapParamsConfig(xds_host="127.0.0.1", xds_port=xds_port)
        data = BootstrapInput("default", f"dp-{index}", "backend", admin_port=self.admin_port)
        path = workdir / f"envoy-{index}.yaml"
        path.write_text(to_yaml(build_bootstrap(params, data)))
        self.log = (workdir / f"envoy-{index}.log").open("wb")
        self.proc = subprocess.Popen(
            [locate_envoy(), "-c", str(path), "--disable-hot-restart", "-l", "warning"]
            + ["--base-id", str(1000 + index), "--concurrency", "1"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def dataplane(self) -> dict:
        return {
            "type": "Dataplane",
            "mesh": "default",
            "name": f"dp-{self.index}",
            "networking": {
                "inbound": [
                    {
                        "interface": f"127.0.0.1:{self.inbound_port}:9",
                        "tags": {"service": "backend"},
                    }
                ],
                "outbound": [{"interface": f":{self.outbound_port}", "service": "backend"}],
            },
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def record_cds_responses() -> list[float]:
    """Wall times at which the server handed a Cluster response to gRPC: the server's side of
    convergence, apart from the clients' (which share the machine's 2 cores). Streams count
    their responses themselves: this watches them do it."""
    sent: list[float] = []
    original = Stream.responded

    def responded(stream: Stream, type_url: str) -> None:
        if type_url == CDS_TYPE:
            sent.append(time.time())
        original(stream, type_url)

    Stream.responded = responded  # type: ignore[method-assign]
    return sent


def spawn(argv: list[str]) -> subprocess.Popen[str]:
    """A client process: prints `ready`, then its JSON results once its stdin closes."""
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def settle_seconds(n: int, given: float = 0.0) -> float:
    """How long a change of `n` dataplanes is given before the next one: `given`, or N/400 s
    and at least 2 s (a change that takes longer is charged to the next)."""
    return given or max(2.0, n / 400)


async def recording_clients(address: str, n: int, count: int, secrets: bool) -> list[Any]:
    """`n` light clients (benchmarks.xds_client --record) in `count` processes, once every
    stream has its full config."""
    loop = asyncio.get_running_loop()
    per, procs = n // count, []
    for c in range(count):
        argv = [sys.executable, "-m", "benchmarks.xds_client", address]
        argv += [str(c * per), str(per if c < count - 1 else n - c * per), "7", "--record"]
        procs.append(spawn(argv + (["--secrets"] if secrets else [])))
    for p in procs:
        assert p.stdout is not None
        line = await loop.run_in_executor(None, p.stdout.readline)
        assert line.strip() == "ready", line
    return procs


async def response_times(procs: list[Any]) -> dict[str, list[float]]:
    """Close the clients: every stream's response times since its full config, by node id."""
    loop = asyncio.get_running_loop()
    times: dict[str, list[float]] = {}
    for p in procs:
        out, _ = await loop.run_in_executor(None, p.communicate, "", 120)
        times.update(json.loads(out.strip().splitlines()[-1]).get("times", {}))
    return times


def run_size(n: int, clients: int, envoys: int, mtls: bool, workdir: Path) -> dict:
    base = load_config(env={})
    cfg = replace(
        base,
        xds_server=replace(
            base.xds_server,
            grpc_port=0,
            address="127.0.0.1",
            tls_enabled=False,  # what is measured is the push; benchmarks.xds_connect has TLS
            dataplane_status_flush_interval=timedelta(seconds=5),
        ),
        sds_server=replace(base.sds_server, grpc_port=0),
        change_feed=replace(base.change_feed, debounce=timedelta(milliseconds=20)),
        general=replace(base.general, trust_loopback=True),  # light clients send no token
    )
    core = open_core(cfg)
    core.manager.upsert(wire.from_json(mesh(mtls)))
    ensure_default_mesh(cfg, core.manager)
    if mtls:
        core.manager.upsert(wire.from_json(ALLOW_ALL))
    loop = LoopThread("xds-bench")
    service = XdsService(cfg, core)
    loop.run(service.start())
    sent = record_cds_responses()
    real = [RealEnvoy(i, service.port, workdir) for i in range(min(envoys, n))]
    for i in range(n):
        core.manager.upsert(wire.from_json(real[i].dataplane() if i < len(real) else dataplane(i)))
    core.manager.upsert(wire.from_json(health_check(10)))
    rss_before = rss_bytes()
    marker = 7
    procs = []
    light = n - len(real)
    per = light // clients if light >= clients else light
    started = time.monotonic()
    first = len(real)
    while first < n:
        count = min(per, n - first) if len(procs) < clients - 1 else n - first
        argv = [sys.executable, "-m", "benchmarks.xds_client", f"127.0.0.1:{service.port}"]
        argv += [str(first), str(count), str(marker)] + (["--secrets"] if mtls else [])
        procs.append(spawn(argv))
        first += count
    if real:
        argv = [sys.executable, "-m", "benchmarks.envoy_watch", str(marker)]
        argv += [str(e.admin_port) for e in real]
        procs.append(spawn(argv))
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    connect_s = time.monotonic() - started
    # Let insights flush and the loop go idle: past the quiet collection that follows the
    # connection storm (a change arriving during it would wait for it, as it would in production).
    time.sleep(service.collector.quiet + 1.0)
    rss_per_dp = (rss_bytes() - rss_before) / n
    cpu0 = cpu_seconds()
    committed = time.time()
    core.manager.upsert(wire.from_json(health_check(marker)))
    # Wait for the clients to report: close stdin once the xDS loop has gone quiet.
    time.sleep(max(2.0, n / 500))
    cpu = cpu_seconds() - cpu0
    reconcile_ms = service.reconciler.stats.last_duration * 1000  # the change's pass
    seen: dict[str, float] = {}
    for p in procs:
        out, _ = p.communicate("", timeout=120)
        report = json.loads(out.strip().splitlines()[-1])
        seen.update(report["seen"] if "started" in report else report)
    for envoy in real:
        envoy.stop()
    server_ms = [(t - committed) * 1000 for t in sent if t >= committed]
    envoy_ms = [(t - committed) * 1000 for node, t in seen.items() if node.startswith("envoy@")]
    loop.run(service.stop())
    loop.close()
    core.close()
    latencies = [(t - committed) * 1000 for t in seen.values()]
    return {
        "dataplanes": n,
        "mtls": mtls,
        "converged": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.mean(latencies), 1) if latencies else None,
        "server_sent_last_ms": round(max(server_ms), 1) if server_ms else None,
        "reconcile_pass_ms": round(reconcile_ms, 1),
        "envoys_converged": f"{len(envoy_ms)}/{len(real)}",
        "envoy_max_ms": round(max(envoy_ms), 1) if envoy_ms else None,
        "cpu_seconds_per_change": round(cpu, 3),
        "rss_kib_per_dataplane": round(rss_per_dp / 1024, 1),
        "connect_all_seconds": round(connect_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--envoys", type=int, default=2)
    parser.add_argument("--mtls", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xds-bench-") as tmp:
        rows = [
            run_size(int(n), args.clients, args.envoys, args.mtls, Path(tmp))
            for n in args.sizes.split(",")
        ]
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
    name = "xds_convergence-mtls.json" if args.mtls else "xds_convergence.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
