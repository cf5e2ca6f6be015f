"""What each kind of change costs the xDS engine, next to the bare gRPC floor of the same run.

    python -m benchmarks.xds_changes [--dataplanes 1000] [--kinds healthcheck,trafficlog,...]
                                     [--changes 10] [--targets engine,kuma-cp,kuma-xds]
                                     [--clients 8] [--settle SECONDS]
                                     [--floors grpc,payload] [--floor-changes 4] [--runs 1]

For each change kind, N dataplanes (light ADS clients, benchmarks.xds_client, in `--clients`
processes) connect to the target, and `--changes` consecutive changes of that kind are written,
each `--settle` seconds after the previous one (N/400, at least 2, by default; a change that takes
longer is charged to the next). Per change: from the write's return to the last
response each affected stream received (p50/p99; `touched` = streams that received anything),
and the CPU seconds the control plane spent on it. Two floors, each a bare grpc.aio server
with the same clients, run right before and right after each kind and target: `grpc`
(benchmarks.grpc_floor: one small Cluster response pushed to every client) and `payload`
(benchmarks.payload_floor: every client sent the resources the engine sends it for this kind,
`--floor-changes` changes per run). Each row prints its medians over the changes and their
ratio to the mean of each floor's two runs (`x_floor` for grpc, `x_payload` for payload).
`--runs N` runs the whole matrix N times in turn and adds each row's medians over the runs,
with their ranges.

Targets:
- `engine`: the xDS service in this process (its own loop thread) over a memory store and the
  in-process change feed, writes through the resource manager: the engine `kuma-xds` runs,
  without the Postgres read and the Redis hop.
- `kuma-cp`: `kuma-cp run` (all-in-one, memory store) as a subprocess, writes through its API
  over HTTP, CPU read from /proc.
- `kuma-xds`: one replica of the split stack as a subprocess, over a fresh Postgres database and
  a Redis channel of this run (each change is read from Postgres after Redis's notice), with a
  `kuma-worker` that signs the identities over RabbitMQ; writes through a resource manager on
  the same store and feed, as `kuma-api` makes them; CPU of the `kuma-xds` process.
All serve plaintext, as the floor does (TLS is measured by benchmarks.xds_connect), and flush
DataplaneInsights every 600 s: those writes are not the push, and one landing in a change's
window would be charged to that change alone.

Kinds (the mesh: service `backend` on every 10th dataplane, versions v1/v2, `svc-{i % 50}` on the
others; every dataplane calls `backend`):
- healthcheck: the `backend` HealthCheck's interval (every node's backend cluster);
- trafficlog: the mesh-wide TrafficLog's backend (every node's outbound listener);
- route-weight: the v1/v2 weights of the TrafficRoute to `backend` (every outbound listener);
- dataplane: a `backend` Dataplane added, then removed (every node's backend endpoints);
- permission: under mTLS, a TrafficPermission added, then removed (every inbound listener);
- mtls: the Mesh's mTLS on, then off (everything, with an identity for every dataplane).
Writes benchmarks/results/xds_changes.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests

from benchmarks import grpc_floor, payload_floor
from benchmarks.change_kinds import KINDS, apply_to, dataplane, mesh
from benchmarks.xds_convergence import (
    RESULTS,
    change_rows,
    cpu_seconds,
    recording_clients,
    response_times,
    settle_seconds,
)
from kuma.config import load_config
from kuma.resources import wire
from kuma.resources.registry import get_type
from kuma.wiring import ensure_default_mesh, open_core
from services.xds.loop_thread import LoopThread
from services.xds.service import XdsService


class Engine:
    """The xDS service in this process over a memory store."""

    def __init__(self, mtls: bool) -> None:
        base = load_config(env={})
        cfg = replace(
            base,
            xds_server=replace(
                base.xds_server,
                grpc_port=0,
                address="127.0.0.1",
                tls_enabled=False,
                dataplane_status_flush_interval=timedelta(seconds=600),  # insights: not the push
            ),
            sds_server=replace(base.sds_server, grpc_port=0),
            monitoring_assignment_server=replace(base.monitoring_assignment_server, grpc_port=0),
            change_feed=replace(base.change_feed, debounce=timedelta(milliseconds=20)),
            general=replace(base.general, trust_loopback=True),
        )
        self.core = open_core(cfg)
        self.core.manager.upsert(wire.from_json(mesh(mtls)))
        ensure_default_mesh(cfg, self.core.manager)
        self.loop = LoopThread("xds-bench")
        self.service = XdsService(cfg, self.core)
        self.loop.run(self.service.start())
        self.address = f"127.0.0.1:{self.service.port}"

    def apply(self, op: str, resource: dict[str, Any]) -> None:
        apply_to(self.core.manager, op, resource)

    def cpu(self) -> float:
        return cpu_seconds()

    def close(self) -> None:
        self.loop.run(self.service.stop())
        self.loop.close()
        self.core.close()


class KumaCp:
    """`kuma-cp run` as a subprocess; writes through its API."""

    def __init__(self, mtls: bool, workdir: Path) -> None:
        from tests.ports import cp_ports  # the one list of kuma-cp's port variables

        ports = cp_ports()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        env |= ports | {
            "KUMA_XDS_SERVER_TLS_ENABLED": "false",
            "KUMA_CHANGE_FEED_DEBOUNCE": "20ms",
            "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "600s",
        }
        self.log = (workdir / "kuma-cp.log").open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "kuma-cp"), "run"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.api = f"http://127.0.0.1:{ports['KUMA_API_SERVER_PORT']}"
        self.address = f"127.0.0.1:{ports['KUMA_XDS_SERVER_GRPC_PORT']}"
        self.http = requests.Session()
        deadline = time.monotonic() + 60
        while not _ok(self.api):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"kuma-cp run did not start: see {workdir / 'kuma-cp.log'}")
            time.sleep(0.2)
        self.apply("upsert", mesh(mtls))

    def _url(self, resource: dict[str, Any]) -> str:
        res = wire.from_json(resource)
        collection = get_type(res.type).plural
        if res.type == "Mesh":
            return f"{self.api}/meshes/{res.name}"
        return f"{self.api}/meshes/{res.mesh}/{collection}/{res.name}"

    def apply(self, op: str, resource: dict[str, Any]) -> None:
        if op == "upsert":
            response = self.http.put(self._url(resource), json=resource, timeout=30)
        else:
            response = self.http.delete(self._url(resource), timeout=30)
        if not response.ok:
            raise RuntimeError(f"{op} {resource['name']}: {response.status_code} {response.text}")

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


class SplitXds:
    """One `kuma-xds` replica of the split stack as a subprocess, over a fresh Postgres database
    and a Redis channel of this run: each change is read from Postgres after the Redis notice,
    as in compose. Writes go through a resource manager on the same store and feed, as
    `kuma-api` makes them; under mTLS a `kuma-worker` signs the CSRs over RabbitMQ."""

    def __init__(self, mtls: bool, workdir: Path) -> None:
        from tests.ports import cp_ports

        self.db = f"kuma_bench_{os.getpid()}_{int(time.time())}"
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.db}"')
        ports = cp_ports()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")} | ports
        self.env |= {
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_POSTGRES_HOST": "127.0.0.1",
            "KUMA_STORE_POSTGRES_PORT": "5432",
            "KUMA_STORE_POSTGRES_USER": "postgres",
            "KUMA_STORE_POSTGRES_PASSWORD": "unused-with-trust-auth",
            "KUMA_STORE_POSTGRES_DB_NAME": self.db,
            "KUMA_CHANGE_FEED_TYPE": "redis",
            "KUMA_CHANGE_FEED_REDIS_CHANNEL": self.db,
            "KUMA_CHANGE_FEED_DEBOUNCE": "20ms",
            "KUMA_XDS_SERVER_TLS_ENABLED": "false",
            "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "600s",
            "KUMA_WORKER_HEALTH_FILE": str(workdir / "worker.health"),
        }
        bin_dir = Path(sys.executable).parent
        migrate = subprocess.run(
            [str(bin_dir / "kuma-cp"), "migrate"], env=self.env, capture_output=True, text=True
        )
        if migrate.returncode != 0:
            self._drop()
            raise RuntimeError(f"kuma-cp migrate: {migrate.stderr}")
        self.core = open_core(load_config(env=self.env))
        self.logs = [(workdir / f"{name}.log").open("wb") for name in ("xds", "worker")]
        self.procs = [
            subprocess.Popen(
                [str(bin_dir / name)], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
            for name, log in zip(("kuma-xds", "kuma-worker"), self.logs, strict=True)
        ]
        self.address = f"127.0.0.1:{ports['KUMA_XDS_SERVER_GRPC_PORT']}"
        diagnostics = f"http://127.0.0.1:{ports['KUMA_XDS_SERVER_DIAGNOSTICS_PORT']}/ready"
        deadline = time.monotonic() + 60
        while not _ok(diagnostics) or not (workdir / "worker.health").exists():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"kuma-xds or kuma-worker did not start: see {workdir}")
            time.sleep(0.2)
        self.apply("upsert", mesh(mtls))

    def apply(self, op: str, resource: dict[str, Any]) -> None:
        apply_to(self.core.manager, op, resource)

    def cpu(self) -> float:
        return proc_cpu(self.procs[0].pid)

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(20)
        for log in self.logs:
            log.close()
        self.core.close()
        self._drop()

    def _drop(self) -> None:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.ConnectionError:
        return False


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid`, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TARGETS = {"engine": Engine, "kuma-cp": KumaCp, "kuma-xds": SplitXds}


def run_kind(
    target_name: str,
    kind_name: str,
    n: int,
    changes: int,
    clients: int,
    workdir: Path,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    kind = KINDS[kind_name]
    target: Engine | KumaCp | SplitXds = (
        Engine(kind.mtls) if target_name == "engine" else TARGETS[target_name](kind.mtls, workdir)
    )
    try:
        for resource in (*kind.setup, *(dataplane(i) for i in range(n))):
            target.apply("upsert", resource)
        procs = asyncio.run(recording_clients(target.address, n, clients, kind.mtls))
        settle = settle_seconds(n, settle_s)
        time.sleep(settle + 2.0)  # past the quiet collection after the connection storm
        marks: list[tuple[float, float]] = []  # (write returned, CPU seconds spent)
        # for a profiler to attach to the changes alone
        print(f"# {target_name} {kind_name}: changes begin", file=sys.stderr, flush=True)
        for k in range(changes):
            cpu0 = target.cpu()
            for op, resource in kind.change(k):
                target.apply(op, resource)
            written = time.time()
            time.sleep(settle)
            marks.append((written, target.cpu() - cpu0))
        print(f"# {target_name} {kind_name}: changes end", file=sys.stderr, flush=True)
        times = asyncio.run(response_times(procs))
    finally:
        target.close()
    rows = change_rows(marks, times)
    return {"target": target_name, "kind": kind_name, "dataplanes": n, "changes": rows}


def summary(result: dict[str, Any], floors: dict[str, dict[str, float]]) -> dict[str, Any]:
    rows = [r for r in result["changes"] if r["p99_ms"] is not None]
    p99 = statistics.median(r["p99_ms"] for r in rows) if rows else None
    cpu = round(statistics.median(r["cpu_s"] for r in rows), 3) if rows else None
    first, last = rows[:3], rows[-3:]
    out = {
        "target": result["target"],
        "kind": result["kind"],
        "touched": statistics.median(r["touched"] for r in rows) if rows else 0,
        "p99_ms": p99,
        "cpu_s": cpu,
    }
    for name, floor in floors.items():  # "floor" is grpc_floor's, "payload" payload_floor's
        prefix = "floor" if name == "grpc" else name
        out |= {
            f"{prefix}_p99_ms": floor["p99_ms"],
            f"p99_x_{prefix}": round(p99 / floor["p99_ms"], 2) if p99 else None,
            f"{prefix}_cpu_s": floor["cpu_s"],
            f"cpu_x_{prefix}": round(cpu / floor["cpu_s"], 2) if cpu else None,
        }
    # The last three changes against the first three: does cost creep with repetition?
    out["last3_vs_first3"] = (
        round(
            statistics.median(r["p99_ms"] for r in last)
            / statistics.median(r["p99_ms"] for r in first),
            2,
        )
        if len(rows) >= 6
        else None
    )
    return out


@dataclass(frozen=True)
class Floors:
    names: tuple[str, ...]  # "grpc" (benchmarks.grpc_floor), "payload" (benchmarks.payload_floor)
    dataplanes: int
    clients: int
    changes: int  # the payload floor's changes per run
    settle: float

    def measure(self, name: str, kind: str) -> dict[str, float]:
        n, clients = self.dataplanes, self.clients
        if name == "grpc":
            row = asyncio.run(grpc_floor.run_size(n, clients))
            return {"p99_ms": row["p99_ms"], "cpu_s": row["cpu_seconds_per_change"]}
        settle = settle_seconds(n, self.settle)
        row = asyncio.run(payload_floor.run(kind, n, self.changes, clients, settle))
        return {"p99_ms": row["p99_ms"], "cpu_s": row["cpu_s"]}

    def around(
        self, kind: str, run: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
        """`run()` between two runs of each floor: the VM's speed drifts within minutes, so each
        result is compared with the mean of the floors measured right before and right after."""
        before = {name: self.measure(name, kind) for name in self.names}
        result = run()
        after = {name: self.measure(name, kind) for name in reversed(self.names)}
        floors = {
            name: {
                "p99_ms": round((before[name]["p99_ms"] + after[name]["p99_ms"]) / 2, 1),
                "cpu_s": round((before[name]["cpu_s"] + after[name]["cpu_s"]) / 2, 3),
            }
            for name in self.names
        }
        return result, floors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataplanes", type=int, default=1000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds per change (default: N/400, >= 2)"
    )
    parser.add_argument("--floors", default="grpc,payload", help="grpc, payload or both")
    parser.add_argument(
        "--floor-changes", type=int, default=4, help="changes per payload floor run"
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="the whole matrix this many times, in turn"
    )
    args = parser.parse_args()
    n = args.dataplanes
    floors = Floors(tuple(args.floors.split(",")), n, args.clients, args.floor_changes, args.settle)
    results, summaries = [], []
    with tempfile.TemporaryDirectory(prefix="xds-changes-") as tmp:
        for run in range(args.runs):
            for kind in args.kinds.split(","):
                for target in args.targets.split(","):
                    result, measured = floors.around(
                        kind,
                        lambda t=target, k=kind: run_kind(
                            t, k, n, args.changes, args.clients, Path(tmp), args.settle
                        ),
                    )
                    results.append(result)
                    summaries.append({"run": run + 1} | summary(result, measured))
                    print(json.dumps(summaries[-1]), flush=True)
    medians = medians_of(summaries)
    if args.runs > 1:
        for row in medians:
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "medians": medians,
        "summary": summaries,
        "runs": results,
    }
    (RESULTS / "xds_changes.json").write_text(json.dumps(out, indent=2) + "\n")


def medians_of(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target and kind, the median of each figure over the runs, and its range: the VM's
    speed drifts, so runs of the matrix in turn are compared by their medians."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in summaries:
        rows.setdefault((row["target"], row["kind"]), []).append(row)
    out = []
    for (target, kind), runs in rows.items():
        row: dict[str, Any] = {"target": target, "kind": kind, "runs": len(runs)}
        for field, value in runs[0].items():
            if isinstance(value, int | float) and field not in ("run", "touched"):
                values = [r[field] for r in runs if r.get(field) is not None]
                row[field] = round(statistics.median(values), 3) if values else None
                row[f"{field}_range"] = [min(values), max(values)] if values else None
        out.append(row)
    return out


if __name__ == "__main__":
    main()
