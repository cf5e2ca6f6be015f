"""The worker's housekeeping inside another process, without nameko: `kuma-cp run` calls

    stop = start_housekeeping(core, cfg)
    ...
    stop()

which creates the start-up defaults once (synchronously), then runs the liveness sweep and the
insight clean-up on one daemon thread at their intervals (the config's `worker` section,
`cfg.worker` unless `settings` is given). `stop()` wakes the thread and waits for a running
job to finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kuma.config import KumaCpConfig, WorkerConfig
from kuma.wiring import Core
from services.worker.housekeeping import Housekeeping, ensure_defaults

log = logging.getLogger("kuma.worker")


def start_housekeeping(
    core: Core,
    cfg: KumaCpConfig,
    settings: WorkerConfig | None = None,
    *,
    defaults: bool = True,
) -> Callable[[], None]:
    """Start the periodic jobs on a thread; return the function that stops them."""
    housekeeping = Housekeeping(cfg, core, settings)
    if defaults:
        ensure_defaults(cfg, core)
    jobs = housekeeping.jobs()
    stopping = threading.Event()

    def loop() -> None:
        now = time.monotonic()
        due = [now + interval for _, interval, _ in jobs]
        while not stopping.is_set():
            now = time.monotonic()
            for i, (name, interval, job) in enumerate(jobs):
                if now >= due[i]:
                    try:
                        job()
                    except Exception:  # never let one bad round end the thread
                        log.exception("%s failed", name)
                    due[i] = time.monotonic() + interval
            stopping.wait(max(0.0, min(due) - time.monotonic()))

    thread = threading.Thread(target=loop, name="kuma-housekeeping", daemon=True)
    thread.start()
    log.info("housekeeping started: %s", ", ".join(f"{n} every {i:g}s" for n, i, _ in jobs))

    def stop() -> None:
        stopping.set()
        thread.join(timeout=30)

    return stop
