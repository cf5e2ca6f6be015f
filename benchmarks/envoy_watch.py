"""Watches real Envoys for the xDS benchmark, in a process of its own (so that polling admin
APIs costs the xDS process nothing).

    python -m benchmarks.envoy_watch MARKER_SECONDS ADMIN_PORT...

Prints `ready` once every Envoy has a `backend` cluster, then polls each Envoy's admin
`/config_dump` for the first moment its `backend` cluster carries a health check with interval
MARKER_SECONDS; when stdin closes, prints `{"envoy@PORT": wall time seen}` as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request


def interval(port: int) -> int | None:
    url = f"http://127.0.0.1:{port}/config_dump?resource=dynamic_active_clusters"
    with urllib.request.urlopen(url, timeout=2) as answer:
        dump = json.load(answer)
    for config in dump.get("configs", []):
        cluster = config.get("cluster", {})
        if cluster.get("name") == "backend":
            checks = cluster.get("health_checks") or [{}]
            return int(checks[0].get("interval", "0s").rstrip("s") or 0)
    return None


def poll(port: int, accept: object, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = interval(port)
            if (accept is None and value is not None) or value == accept:
                return time.time()
        except OSError:
            pass
        time.sleep(0.01)
    return None


def main(marker: int, ports: list[int]) -> None:
    for port in ports:
        if poll(port, None, 60) is None:
            raise SystemExit(f"Envoy with admin port {port} never got its config")
    print("ready", flush=True)
    seen: dict[str, float] = {}

    def watch(port: int) -> None:
        at = poll(port, marker, 120)
        if at is not None:
            seen[f"envoy@{port}"] = at

    threads = [threading.Thread(target=watch, args=(p,), daemon=True) for p in ports]
    for t in threads:
        t.start()
    sys.stdin.read()
    for t in threads:
        t.join(timeout=1)
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(p) for p in sys.argv[2:]])
