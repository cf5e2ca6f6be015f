"""The housekeeping functions as plain Python, on the memory store and on Postgres: heartbeats
and the liveness sweep (kuma/heartbeat.py), insight clean-up, the advisory lock of singleton
jobs, and the in-process scheduler that `kuma-cp run` uses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kuma import heartbeat
from kuma.config import KumaCpConfig, WorkerConfig, load_config
from kuma.errors import NotFoundError
from kuma.events import InProcessFeed
from kuma.manager import ResourceManager
from kuma.resources.base import Resource
from kuma.resources.insight import DataplaneInsightSpec, Subscription
from kuma.resources.registry import DATAPLANE_INSIGHT, SECRET
from kuma.store import MemoryStore, ResourceStore
from kuma.wiring import Core
from services.worker.housekeeping import SWEEP_LOCK_KEY, Housekeeping, prune_insights
from services.worker.inprocess import start_housekeeping
from tests.worker.conftest import pg_env

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_and_cfg(request: pytest.FixtureRequest) -> Iterator[tuple[ResourceStore, KumaCpConfig]]:
    if request.param == "memory":
        yield MemoryStore(), load_config(env={})
        return
    pg = request.getfixturevalue("own_pg_database")
    env = {**pg_env(pg), "KUMA_STORE_MIGRATE_ON_START": "true"}
    cfg = load_config(env=env)
    from kuma.wiring import open_store

    store = open_store(cfg)
    yield store, cfg
    store.close()


@pytest.fixture()
def store(store_and_cfg: tuple[ResourceStore, KumaCpConfig]) -> ResourceStore:
    return store_and_cfg[0]


def sub(
    sid: str, cp: str, connected: datetime, disconnected: datetime | None = None
) -> Subscription:
    return Subscription(
        id=sid, control_plane_instance_id=cp, connect_time=connected, disconnect_time=disconnected
    )


def put_insight(store: ResourceStore, name: str, *subs: Subscription) -> Resource:
    spec = DataplaneInsightSpec(subscriptions=list(subs))
    return store.create(Resource(DATAPLANE_INSIGHT, "default", name, spec))


def insight(store: ResourceStore, name: str) -> Resource:
    return store.get(DATAPLANE_INSIGHT, "default", name)


def beats(store: ResourceStore) -> dict[str, datetime]:
    return {hb.instance_id: hb.last_beat for hb in heartbeat.heartbeats(store)}


def test_beat_creates_then_refreshes(store: ResourceStore) -> None:
    assert heartbeat.beat(store, "replica-a") is True
    first = beats(store)["replica-a"]
    time.sleep(0.01)
    assert heartbeat.beat(store, "replica-a") is False
    assert beats(store)["replica-a"] > first
    heartbeat.retire(store, "replica-a")
    assert beats(store) == {}
    heartbeat.retire(store, "replica-a")  # idempotent


def test_sweep_closes_only_the_dead_replicas_subscriptions(store: ResourceStore) -> None:
    heartbeat.beat(store, "dead")
    time.sleep(0.2)
    heartbeat.beat(store, "live")
    last = beats(store)
    gap = last["live"] - last["dead"]
    assert gap > timedelta(0)
    # Other Secrets of kuma.system are not heartbeats.
    from kuma.tokens import ensure_signing_key

    ensure_signing_key(store)

    put_insight(store, "dp-dead", sub("s1", "dead", T0))
    live_only = put_insight(store, "dp-live", sub("s2", "live", T0))
    put_insight(
        store,
        "dp-moved",  # was on the dead replica, now on the live one
        sub("s3", "dead", T0, T0 + timedelta(seconds=1)),
        sub("s4", "live", T0 + timedelta(seconds=2)),
    )
    put_insight(store, "dp-unknown", sub("s5", "never-beat", T0))

    now, timeout = last["live"] + gap / 4, gap / 2
    assert heartbeat.sweep(store, now, timeout) == 1

    dead = insight(store, "dp-dead").spec
    assert not dead.is_online()
    assert dead.subscriptions[0].disconnect_time == last["dead"]
    assert insight(store, "dp-live").version == live_only.version  # not rewritten
    moved = insight(store, "dp-moved")
    assert moved.version == 1 and moved.spec.is_online()
    assert insight(store, "dp-unknown").spec.is_online()  # a replica never seen is never swept
    # the dead replica is forgotten, the live one is kept
    assert set(beats(store)) == {"live"}
    assert heartbeat.sweep(store, now, timeout) == 0
    # A replica taken for dead that comes back is told so by its next beat.
    assert heartbeat.beat(store, "dead") is True


def test_sweep_reads_no_insight_while_every_replica_is_alive(store: ResourceStore) -> None:
    heartbeat.beat(store, "live")
    put_insight(store, "dp", sub("s", "live", T0))
    assert heartbeat.sweep(store, datetime.now(UTC), timedelta(seconds=30)) == 0
    assert insight(store, "dp").spec.is_online()


def test_prune_keeps_the_newest_closed_subscriptions_and_every_open_one(
    store: ResourceStore,
) -> None:
    closed = [
        sub(f"c{i}", "cp", T0 + timedelta(minutes=i), T0 + timedelta(minutes=i, seconds=30))
        for i in range(8)
    ]
    open_sub = sub("open", "cp", T0 + timedelta(hours=1))
    # order on purpose not chronological: it must be kept for what stays
    order = [closed[3], closed[0], open_sub, closed[7], closed[1], closed[6], closed[2],
             closed[5], closed[4]]  # fmt: skip
    put_insight(store, "busy", *order)
    put_insight(store, "quiet", *closed[:3], open_sub)

    assert prune_insights(store, keep=5) == 3
    kept = [s.id for s in insight(store, "busy").spec.subscriptions]
    assert kept == ["c3", "open", "c7", "c6", "c5", "c4"]
    assert insight(store, "quiet").version == 1
    assert prune_insights(store, keep=5) == 0
    assert prune_insights(store, keep=0) == 5 + 3
    assert [s.id for s in insight(store, "busy").spec.subscriptions] == ["open"]


def test_rewrite_retries_after_a_concurrent_write(store: ResourceStore) -> None:
    stale = put_insight(store, "dp", sub("s1", "dead", T0))
    # an xDS replica appends a subscription after the sweep read the insight
    current = insight(store, "dp")
    newer = DataplaneInsightSpec(subscriptions=[*current.spec.subscriptions, sub("s2", "b", T0)])
    store.update(Resource(DATAPLANE_INSIGHT, "default", "dp", newer, current.version))

    def close_all(spec: DataplaneInsightSpec) -> DataplaneInsightSpec:
        return DataplaneInsightSpec(
            subscriptions=[s.model_copy(update={"disconnect_time": T0}) for s in spec.subscriptions]
        )

    assert heartbeat.rewrite_insight(store, stale, close_all) is True
    subs = insight(store, "dp").spec.subscriptions
    assert [s.id for s in subs] == ["s1", "s2"] and all(s.disconnect_time for s in subs)


def test_singleton_jobs_skip_while_another_process_holds_the_lock(
    store_and_cfg: tuple[ResourceStore, KumaCpConfig],
) -> None:
    store, cfg = store_and_cfg
    core = Core(store=store, feed=InProcessFeed(), manager=ResourceManager(store))
    jobs = Housekeeping(cfg, core, WorkerConfig())
    assert jobs.run_sweep() == 0
    assert jobs.run_cleanup() == 0
    if cfg.store.type != "postgres":
        return
    from kuma.config import postgres_conninfo
    from kuma.store import migrate

    with migrate.connect(postgres_conninfo(cfg.store.postgres)) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (SWEEP_LOCK_KEY,))
        assert jobs.run_sweep() is None  # skipped
        assert jobs.run_cleanup() == 0  # another job's lock is free
    assert jobs.run_sweep() == 0


def test_inprocess_housekeeping_sweeps_on_a_thread() -> None:
    store = MemoryStore()
    core = Core(store=store, feed=InProcessFeed(), manager=ResourceManager(store))
    cfg = load_config(env={})
    heartbeat.beat(store, "gone")
    put_insight(store, "dp", sub("s", "gone", T0))
    settings = WorkerConfig(
        sweep_interval=timedelta(seconds=0.1),
        heartbeat_timeout=timedelta(seconds=0.3),
        insight_cleanup_interval=timedelta(seconds=0.1),
        insight_keep_closed=0,
    )
    stop = start_housekeeping(core, cfg, settings)
    try:
        # the start-up defaults were created synchronously
        store.get("Mesh", "default", "default")
        store.get(SECRET, "kuma.system", "admin-token")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if not insight(store, "dp").spec.subscriptions:
                    break  # swept (closed), then pruned (keep 0)
            except NotFoundError:
                pass
            time.sleep(0.05)
        else:
            raise AssertionError(f"not swept: {insight(store, 'dp').spec}")
    finally:
        started = time.monotonic()
        stop()
        assert time.monotonic() - started < 2


def test_settings_from_env() -> None:
    # the worker's settings are kuma-cp config keys under `worker`, their env vars as before
    s = load_config(
        env={"KUMA_WORKER_SWEEP_INTERVAL": "2s", "KUMA_WORKER_INSIGHT_KEEP_CLOSED": "3"}
    ).worker
    assert s.sweep_interval == timedelta(seconds=2) and s.insight_keep_closed == 3
    assert WorkerConfig().heartbeat_timeout == heartbeat.DEFAULT_TIMEOUT
    from kuma.errors import ConfigError

    with pytest.raises(ConfigError, match="KUMA_WORKER_HEARTBEAT_TIMEOUT"):
        load_config(env={"KUMA_WORKER_HEARTBEAT_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="KUMA_WORKER_INSIGHT_KEEP_CLOSED"):
        load_config(env={"KUMA_WORKER_INSIGHT_KEEP_CLOSED": "-1"})
    with pytest.raises(ConfigError, match="Worker validation failed: SweepInterval must be posi"):
        load_config(env={"KUMA_WORKER_SWEEP_INTERVAL": "0s"})
