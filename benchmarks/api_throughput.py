"""API throughput on Postgres with 2 gunicorn workers (issue 3 "Done when").

    python -m benchmarks.api_throughput [--duration 3] [--rounds 7] [--connections 16]
                                        [--dataplanes 10000]

Creates a scratch database on the machine's Postgres (KUMA_BENCH_POSTGRES_DSN, default
`host=127.0.0.1 port=5432 user=postgres`), migrates it, stores N Dataplanes, starts
`kuma-api --workers 2` on it, and measures requests/s of, in one run on the same server:

- a trivial JSON endpoint (`GET /`, a constant document),
- `GET /meshes/default/dataplanes/{name}` (one resource: one Postgres read),
- `GET /meshes/default/dataplanes` (the first page of 100 out of N), and a page deep in the list;
- and the wall time of `kumactl get dataplanes` listing all N (it follows `next` page by page).

Rounds interleave the endpoints; each endpoint reports its median round, and the single-GET /
trivial ratio is the median of the per-round ratios (robust to the machine's speed drifting).

Load comes from `wrk` when installed (`apt-get install -y wrk`), else from a Python generator
(threads with keep-alive connections; it competes with the server for the CPU, so its figures
are lower). Prints a table and writes benchmarks/results/api_throughput.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.scratch import scratch_database
from kuma.config import load_config
from kuma.netutil import free_port

RESULTS = Path(__file__).with_name("results") / "api_throughput.json"
HOST = "127.0.0.1"
SINGLE = "single GET /meshes/default/dataplanes/{name}"


def seed(dsn: str, count: int) -> None:
    """Migrate, then store Mesh default and `count` Dataplanes (the way the API would)."""
    from kuma.manager import ResourceManager
    from kuma.resources.base import Resource
    from kuma.resources.registry import DATAPLANE, decode_spec
    from kuma.store import PostgresStore
    from kuma.store.migrate import migrate

    migrate(dsn)
    store = PostgresStore(dsn, min_size=8, max_size=8)
    manager = ResourceManager(store)
    from kuma.config import load_config
    from kuma.wiring import ensure_default_mesh

    ensure_default_mesh(load_config(env={}), manager)

    def one(i: int) -> None:
        spec = decode_spec(
            DATAPLANE,
            {
                "networking": {
                    "inbound": [
                        {
                            "interface": f"10.0.{i // 250}.{i % 250}:8080:18080",
                            "tags": {"service": f"svc-{i % 50}", "version": "v1"},
                        }
                    ],
                    "outbound": [{"interface": ":33033", "service": "redis"}],
                }
            },
        )
        manager.create(Resource(DATAPLANE, "default", f"dp-{i:05d}", spec))

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))
    finally:
        store.close()


@contextmanager
def gunicorn_api(db: dict[str, str], workers: int) -> Iterator[tuple[str, str]]:
    api_port, diag_port = free_port(HOST), free_port(HOST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env.update(
        {
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_POSTGRES_HOST": db.get("host", HOST),
            "KUMA_STORE_POSTGRES_PORT": db.get("port", "5432"),
            "KUMA_STORE_POSTGRES_USER": db.get("user", "postgres"),
            "KUMA_STORE_POSTGRES_PASSWORD": db.get("password", "unused"),
            "KUMA_STORE_POSTGRES_DB_NAME": db["dbname"],
            "KUMA_API_SERVER_ADDRESS": HOST,
            "KUMA_API_SERVER_PORT": str(api_port),
            "KUMA_XDS_SERVER_DIAGNOSTICS_PORT": str(diag_port),
            "KUMA_API_LOG_LEVEL": "warning",
        }
    )
    exe = Path(sys.executable).with_name("kuma-api")
    proc = subprocess.Popen([str(exe), "--workers", str(workers)], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"kuma-api exited with {proc.returncode}")
            try:
                conn = http.client.HTTPConnection(HOST, diag_port, timeout=1)
                conn.request("GET", "/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("kuma-api did not become ready")
            time.sleep(0.1)
        yield f"http://{HOST}:{api_port}", f"{HOST}:{api_port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_wrk(url: str, duration: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": round(rps, 1),
        "p50": p50.group(1) if p50 else None,
        "p99": p99.group(1) if p99 else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def run_python(url: str, duration: int, connections: int) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    stop = time.monotonic() + duration
    counts = [0] * connections
    bad = [0] * connections

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.monotonic() < stop:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            counts[i] += 1
            if response.status >= 300:
                bad[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {"requests_per_s": round(sum(counts) / elapsed, 1), "non_2xx": sum(bad)}


def time_kumactl_get(base: str, expected_rows: int, runs: int = 3) -> dict[str, Any]:
    """Wall time of `kumactl get dataplanes` (every page, one table) against the API."""
    kumactl = str(Path(sys.executable).with_name("kumactl"))
    with tempfile.TemporaryDirectory(prefix="kumactl-bench-") as tmp:
        (Path(tmp) / "config").touch()  # an explicit --config-file must exist
        config = ["--config-file", str(Path(tmp) / "config")]
        subprocess.run(
            [kumactl, *config, "config", "control-planes", "add", "--name", "bench"]
            + ["--address", base],
            check=True,
            capture_output=True,
        )
        times, rows = [], 0
        for _ in range(runs):
            started = time.monotonic()
            out = subprocess.run(
                [kumactl, *config, "get", "dataplanes"], check=True, capture_output=True, text=True
            ).stdout
            times.append(time.monotonic() - started)
            rows = len(out.splitlines()) - 1  # the header
    if rows != expected_rows:
        raise SystemExit(f"kumactl get dataplanes listed {rows} rows, expected {expected_rows}")
    return {"rows": rows, "median_s": round(statistics.median(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per endpoint and round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median wins)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--dataplanes", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    load = run_wrk if shutil.which("wrk") else run_python
    tool = "wrk" if load is run_wrk else "python threads"

    load_before = os.getloadavg()[0]
    with scratch_database() as db:
        dsn = " ".join(f"{k}={v}" for k, v in db.items())
        started = time.monotonic()
        seed(dsn, args.dataplanes)
        seeded_s = time.monotonic() - started
        with gunicorn_api(db, args.workers) as (base, _):
            deep = max(0, args.dataplanes - 200)
            targets = {
                "trivial JSON (GET /)": "/",
                SINGLE: "/meshes/default/dataplanes/dp-00042",
                f"list page 1 (size=100 of {args.dataplanes})": "/meshes/default/dataplanes",
                f"list deep page (size=100, offset={deep})": (
                    f"/meshes/default/dataplanes?size=100&offset={deep}"
                ),
            }
            for path in targets.values():
                load(base + path, 2, args.connections)  # warm-up
            # Rounds interleave the endpoints, so that background load on a shared machine
            # touches them alike; each endpoint reports its median round.
            rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in targets}
            for _ in range(args.rounds):
                for label, path in targets.items():
                    rounds[label].append(load(base + path, args.duration, args.connections))
            kumactl_get = time_kumactl_get(base, args.dataplanes)
            results = {}
            for label, path in targets.items():
                runs = sorted(rounds[label], key=lambda r: r["requests_per_s"])
                results[label] = {
                    "path": path,
                    **runs[len(runs) // 2],
                    "rounds_requests_per_s": [r["requests_per_s"] for r in rounds[label]],
                }
    # This VM's speed drifts by 2x within a minute: the ratio is taken within each round (the
    # two endpoints run back to back) and the median of those is reported.
    ratios = [
        s["requests_per_s"] / t["requests_per_s"]
        for t, s in zip(rounds["trivial JSON (GET /)"], rounds[SINGLE], strict=True)
    ]
    report = {
        "benchmark": "api_throughput",
        "load_generator": tool,
        "gunicorn_workers": args.workers,
        "threads_per_worker": load_config().api_server.threads,  # what kuma-api reads
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "dataplanes": args.dataplanes,
        "seed_s": round(seeded_s, 1),
        "cpus": os.cpu_count(),
        # other work on the machine skews every figure: compare the load averages
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "results": results,
        "single_get_vs_trivial": round(statistics.median(ratios), 3),
        "single_get_vs_trivial_by_round": [round(r, 3) for r in ratios],
        "kumactl_get_dataplanes": kumactl_get,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'endpoint':<48} {'req/s':>9} {'p50':>9} {'p99':>9}")
    for label, r in results.items():
        p50, p99 = r.get("p50") or "", r.get("p99") or ""
        print(f"{label:<48} {r['requests_per_s']:>9.1f} {p50:>9} {p99:>9}")
    print(f"single GET / trivial = {report['single_get_vs_trivial']:.0%}  (target >= 60%)")
    print(
        f"kumactl get dataplanes: {kumactl_get['rows']} rows in {kumactl_get['median_s']} s "
        f"(median of 3)"
    )
    print(
        f"load: {tool}, {args.connections} connections, median of {args.rounds} rounds of "
        f"{args.duration}s; wrote {RESULTS}"
    )


if __name__ == "__main__":
    main()
