"""The worker's certificate-signing RPC (issue 9 "Done when"): where its time goes.

    python -m benchmarks.worker_rpc [--calls 200]

Makes a scratch database (a Mesh with a builtin CA) and a scratch RabbitMQ virtual host, starts
one `kuma-worker` process on them, and times from this plain-Python process (kombu client, as
the xDS service uses):

- `sign` over RPC: CSR in, chain out (what an xDS replica waits for per workload identity);
- `ping` over RPC: the same round trip through RabbitMQ and nameko with no work behind it;
- `sign_workload` in-process on the same store: the signing alone (CA load cached, as in the
  worker).

The RabbitMQ + nameko share of a signature is `sign` over RPC minus the in-process signing.
Writes benchmarks/results/worker_rpc.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.scratch import scratch_database, scratch_vhost
from kuma import ca
from kuma.config import load_config
from kuma.edge.worker_client import WorkerRpcClient, worker_key
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, decode_spec
from kuma.store.migrate import migrate
from kuma.wiring import open_core

RESULTS = Path(__file__).parent / "results" / "worker_rpc.json"
MESH_NAME = "bench"


def timings_ms(call: Callable[[], object], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(n - 1, round(0.99 * (n - 1)))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with scratch_database() as db, scratch_vhost() as amqp, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        kuma_env = {
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_POSTGRES_HOST": db.get("host", "127.0.0.1"),
            "KUMA_STORE_POSTGRES_PORT": db.get("port", "5432"),
            "KUMA_STORE_POSTGRES_USER": db.get("user", "postgres"),
            "KUMA_STORE_POSTGRES_PASSWORD": "unused",
            "KUMA_STORE_POSTGRES_DB_NAME": db["dbname"],
            "KUMA_WORKER_AMQP_URI": amqp,
        }
        migrate(" ".join(f"{k}={v}" for k, v in db.items()))
        core = open_core(load_config(env=kuma_env))
        spec = decode_spec(MESH, {"mtls": {"enabled": True, "ca": {"builtin": {}}}})
        core.manager.create(Resource(MESH, MESH_NAME, MESH_NAME, spec))
        health = Path(tmp) / "health"
        log = (Path(tmp) / "worker.log").open("wb")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("kuma-worker"))],
            env={**env, **kuma_env, "KUMA_WORKER_HEALTH_FILE": str(health)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not health.exists():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("kuma-worker did not start")
                time.sleep(0.05)
            csr = ca.workload_csr(ca.new_private_key(), MESH_NAME, "backend")
            with WorkerRpcClient(amqp, timeout=10, key=worker_key(core.store)) as rpc:
                for _ in range(10):  # warm up: CA loaded, connections and queues ready
                    rpc.sign(MESH_NAME, "backend", csr, 3600)
                    rpc.ping()
                sign_rpc = timings_ms(lambda: rpc.sign(MESH_NAME, "backend", csr, 3600), args.calls)
                ping_rpc = timings_ms(rpc.ping, args.calls)
            ca.sign_workload(core.store, MESH_NAME, "backend", csr, 3600)
            local = timings_ms(
                lambda: ca.sign_workload(core.store, MESH_NAME, "backend", csr, 3600), args.calls
            )
            keygen = timings_ms(
                lambda: ca.workload_csr(ca.new_private_key(), MESH_NAME, "backend"), args.calls
            )
        finally:
            worker.terminate()
            worker.wait(15)
            log.close()
            core.close()
    report = {
        "benchmark": "worker_rpc",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "calls": args.calls,
        "sign_over_rpc": sign_rpc,
        "ping_over_rpc": ping_rpc,
        "sign_in_process": local,
        "key_and_csr_in_xds": keygen,
        "rabbitmq_and_nameko_share_of_sign_ms": round(
            sign_rpc["median_ms"] - local["median_ms"], 2
        ),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
