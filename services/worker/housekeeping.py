"""The worker's jobs as plain functions: the nameko service (`service.py`) calls them from its
entrypoints and `kuma-cp run` from a thread (`inprocess.py`). No nameko in here.

- `ensure_defaults`: default Mesh, token signing key, admin token. Each is created with the
  store's unique (type, mesh, name) key: whoever creates first wins, every other starter (worker,
  API, kuma-cp) gets AlreadyExistsError and reads the winner's. So each is created exactly once
  however many processes start together, with no lock.
- `prune_insights`: keep at most `keep` closed subscriptions per DataplaneInsight.
- `Housekeeping`: the periodic jobs (liveness sweep, insight clean-up) for one process. With a
  Postgres store each job run first takes a Postgres advisory lock (`pg_try_advisory_lock`), so
  that of several workers (and a `kuma-cp run` on the same database) one runs it at a time and
  the others skip that round. The jobs are also correct without it (every write is an
  optimistic update, re-read on conflict): the lock only saves duplicate work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kuma import heartbeat
from kuma.config import KumaCpConfig, WorkerConfig, postgres_conninfo
from kuma.errors import ConflictError, KumaError
from kuma.resources.insight import DataplaneInsightSpec
from kuma.store.base import ResourceStore
from kuma.tokens import ensure_signing_key
from kuma.wiring import Core, ensure_default_mesh

log = logging.getLogger("kuma.worker")

# pg_advisory_lock keys of the worker's singleton jobs ("kuma" in ASCII, then a job number;
# 1 is the schema migration lock of kuma/store/migrate.py).
SWEEP_LOCK_KEY = 0x6B756D6100000002
CLEANUP_LOCK_KEY = 0x6B756D6100000003


@dataclass(frozen=True, slots=True)
class Defaults:
    mesh_created: bool
    admin_token: str
    signing_key_public: bytes


def ensure_defaults(cfg: KumaCpConfig, core: Core) -> Defaults:
    """Create the start-up defaults that are missing; safe when many processes race."""
    # The API's own function (the API creates the token the same way at its start).
    from kuma.admin_token import ensure_admin_token

    mesh_created = ensure_default_mesh(cfg, core.manager)
    key = ensure_signing_key(core.store)
    token = ensure_admin_token(cfg, core.store)
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return Defaults(mesh_created=mesh_created, admin_token=token, signing_key_public=public)


def _prune(keep: int, counter: list[int]) -> heartbeat.InsightChange:
    def change(spec: DataplaneInsightSpec) -> DataplaneInsightSpec | None:
        closed = [s for s in spec.subscriptions if s.disconnect_time is not None]
        extra = len(closed) - keep
        counter[0] = max(extra, 0)
        if extra <= 0:
            return None
        oldest = sorted(closed, key=lambda s: s.disconnect_time or datetime.min.replace(tzinfo=UTC))
        dropped = {id(s) for s in oldest[:extra]}
        return DataplaneInsightSpec(
            subscriptions=[s for s in spec.subscriptions if id(s) not in dropped]
        )

    return change


def prune_insights(store: ResourceStore, keep: int = 5) -> int:
    """Drop the oldest closed subscriptions of each DataplaneInsight beyond `keep` (open ones are
    always kept, and the order of the rest is unchanged); return how many were dropped."""
    if keep < 0:
        raise ValueError("keep must not be negative")
    dropped = 0
    for record in heartbeat.all_insights(store):
        closed = sum(1 for s in record.spec.subscriptions if s.disconnect_time is not None)
        if closed <= keep:
            continue
        counter = [0]
        try:
            if heartbeat.rewrite_insight(store, record, _prune(keep, counter)):
                dropped += counter[0]
        except ConflictError:
            log.warning("clean-up: DataplaneInsight %s.%s kept changing", record.mesh, record.name)
    if dropped:
        log.info("clean-up: dropped %d closed subscription(s)", dropped)
    return dropped


class Housekeeping:
    """The periodic jobs of one process over one core. Each `run_*` returns what it did, or None
    when another process held the job's lock."""

    def __init__(
        self,
        cfg: KumaCpConfig,
        core: Core,
        settings: WorkerConfig | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.cfg = cfg
        self.core = core
        self.settings = settings or cfg.worker
        self._now = now or (lambda: datetime.now(UTC))
        self._conninfo = (
            postgres_conninfo(cfg.store.postgres) if cfg.store.type == "postgres" else None
        )

    @contextmanager
    def _singleton(self, key: int) -> Iterator[bool]:
        """Whether this process holds the job's advisory lock (always True without Postgres).
        The lock lives on its own connection, released when it closes (also on a crash)."""
        if self._conninfo is None:
            yield True
            return
        from kuma.store import migrate

        timeout = float(self.cfg.store.postgres.connection_timeout)
        with migrate.connect(self._conninfo, timeout) as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            yield bool(row and row[0])
            # closing the connection releases the lock

    def _run(self, name: str, key: int, job: Callable[[], int]) -> int | None:
        started = time.monotonic()
        try:
            with self._singleton(key) as mine:
                if not mine:
                    log.debug("%s: another process holds the lock; skipped", name)
                    return None
                done = job()
        except KumaError as exc:  # the store is down: the next round tries again
            log.warning("%s failed: %s", name, exc)
            return None
        log.debug("%s: %d in %.1f ms", name, done, (time.monotonic() - started) * 1000)
        return done

    def run_sweep(self) -> int | None:
        return self._run(
            "liveness sweep",
            SWEEP_LOCK_KEY,
            lambda: heartbeat.sweep(self.core.store, self._now(), self.settings.heartbeat_timeout),
        )

    def run_cleanup(self) -> int | None:
        return self._run(
            "insight clean-up",
            CLEANUP_LOCK_KEY,
            lambda: prune_insights(self.core.store, self.settings.insight_keep_closed),
        )

    def jobs(self) -> list[tuple[str, float, Callable[[], Any]]]:
        """(name, interval in seconds, job) of every periodic job."""
        s = self.settings
        return [
            ("liveness sweep", s.sweep_interval.total_seconds(), self.run_sweep),
            ("insight clean-up", s.insight_cleanup_interval.total_seconds(), self.run_cleanup),
        ]
