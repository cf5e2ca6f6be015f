"""Time to the GUI's first screen of a 10,000-dataplane mesh (issue 20).

    python -m benchmarks.gui_first_screen [--dataplanes 10000] [--rounds 7]

Makes a scratch database on the machine's Postgres (benchmarks/scratch.py), stores Mesh
`default` with N Dataplanes and their DataplaneInsights (half of them online), serves the API
and the GUI each on its own embedded server (as `kuma-cp run` does, the GUI reading the API over
HTTP), and times, per round, the full HTML of:

- the overview (`/`: meshes, dataplanes online/offline, policies per kind),
- the mesh's dataplanes (`/meshes/default/dataplanes`: the counts and the first page of 50),
- and the API's aggregate they rest on (`/mesh-insights/default`), alone;

each right after a write to the store (the API then counts afresh: the first screen after a
change) and again with the store unchanged (the API's kept answer: what a polling page costs).

The static assets (one stylesheet, one script) are a few KB and cached by the browser: not
counted. Reports the median and worst round; prints a table and writes
benchmarks/results/gui_first_screen.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from benchmarks.scratch import scratch_database
from services.api.insight_routes import FRESH_FOR

RESULTS = Path(__file__).with_name("results") / "gui_first_screen.json"
HOST = "127.0.0.1"


def _env(db: dict[str, str]) -> dict[str, str]:
    return {
        "KUMA_STORE_TYPE": "postgres",
        "KUMA_STORE_POSTGRES_HOST": db.get("host", HOST),
        "KUMA_STORE_POSTGRES_PORT": db.get("port", "5432"),
        "KUMA_STORE_POSTGRES_USER": db.get("user", "postgres"),
        "KUMA_STORE_POSTGRES_PASSWORD": db.get("password", "unused"),
        "KUMA_STORE_POSTGRES_DB_NAME": db["dbname"],
    }


def seed(manager: Any, count: int) -> None:
    from kuma.resources.base import Resource
    from kuma.resources.registry import DATAPLANE, DATAPLANE_INSIGHT, decode_spec

    def one(i: int) -> None:
        name = f"dp-{i:05d}"
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
        manager.create(Resource(DATAPLANE, "default", name, spec))
        sub: dict[str, Any] = {
            "id": f"s-{i}",
            "controlPlaneInstanceId": "cp-1",
            "connectTime": "2024-01-01T00:00:00Z",
            "status": {"lastUpdateTime": "2024-01-01T00:00:01Z", "total": {"responsesSent": 4}},
        }
        if i % 2:
            sub["disconnectTime"] = "2024-01-01T00:10:00Z"
        insight = decode_spec(DATAPLANE_INSIGHT, {"subscriptions": [sub]})
        manager.create(Resource(DATAPLANE_INSIGHT, "default", name, insight))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def touch(manager: Any) -> None:
    """One write (a dataplane's insight, as an xDS flush does): the store's revision moves."""
    from dataclasses import replace

    from kuma.resources.registry import DATAPLANE_INSIGHT

    current = manager.get(DATAPLANE_INSIGHT, "default", "dp-00000")
    manager.update(replace(current, spec=current.spec))
    time.sleep(FRESH_FOR + 0.05)  # past the time the API may keep an answer regardless


def _time(url: str) -> float:
    started = time.perf_counter()
    response = requests.get(url, timeout=60)
    took = time.perf_counter() - started
    response.raise_for_status()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataplanes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from kuma.config import load_config
    from kuma.edge.wsgi_server import ThreadedWsgiServer
    from kuma.netutil import free_port
    from kuma.store.migrate import migrate
    from kuma.wiring import ensure_default_mesh, open_core
    from services.api.app import create_app as create_api
    from services.gui.app import create_app as create_gui

    with scratch_database() as db:
        migrate(" ".join(f"{k}={v}" for k, v in db.items()))
        cfg = load_config(env=_env(db))
        core = open_core(cfg, name="gui-bench")
        servers = []
        try:
            ensure_default_mesh(cfg, core.manager)
            started = time.perf_counter()
            seed(core.manager, args.dataplanes)
            seeded = time.perf_counter() - started
            api = ThreadedWsgiServer(create_api(cfg, core), HOST, free_port(HOST), name="api")
            api.start()
            servers.append(api)
            api_url = f"http://{HOST}:{api.port}"
            gui = ThreadedWsgiServer(create_gui(api_url), HOST, free_port(HOST), name="gui")
            gui.start()
            servers.append(gui)
            gui_url = f"http://{HOST}:{gui.port}"
            pages = {
                "GUI overview /": gui_url + "/",
                "GUI /meshes/default/dataplanes": gui_url + "/meshes/default/dataplanes",
                "API /mesh-insights/default": api_url + "/mesh-insights/default",
            }
            _time(pages["GUI overview /"])  # warm-up: connections, templates
            times: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for name, url in pages.items():
                    touch(core.manager)  # the store changed: counts are computed afresh
                    times.setdefault(f"{name} (after a change)", []).append(_time(url))
                    times.setdefault(f"{name} (unchanged)", []).append(_time(url))
        finally:
            for server in reversed(servers):
                server.stop()
            core.close()

    rows = {
        name: {"median_s": statistics.median(t), "worst_s": max(t)} for name, t in times.items()
    }
    print(f"{args.dataplanes} dataplanes (half online) on Postgres; seeded in {seeded:.1f} s")
    print(f"{'page':54} {'median':>9} {'worst':>9}")
    for name, row in rows.items():
        print(f"{name:54} {row['median_s'] * 1000:7.0f}ms {row['worst_s'] * 1000:7.0f}ms")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "dataplanes": args.dataplanes,
                "rounds": args.rounds,
                "store": "postgres",
                "machine": {"python": platform.python_version(), "cpus": _cpus()},
                "pages": rows,
            },
            indent=2,
        )
        + "\n"
    )


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
