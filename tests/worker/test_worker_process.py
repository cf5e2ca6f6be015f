"""Real `kuma-worker` processes (nameko, RabbitMQ, Postgres): start-up defaults created exactly
once by workers and API processes starting together; the liveness sweep and insight clean-up
running on the worker's timers, with a heart-beating replica process killed by SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kuma import heartbeat
from kuma.resources.base import Resource
from kuma.resources.insight import DataplaneInsightSpec, Subscription
from kuma.resources.registry import DATAPLANE_INSIGHT, MESH, SECRET
from kuma.store import migrate
from kuma.wiring import Core, open_core
from tests.worker.conftest import ROOT, Worker, cfg_of, pg_env, worker_env

API_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s\\t%(message)s")
from services.api.wsgi import build_wsgi_app, load_api_config
build_wsgi_app(load_api_config()).close()
print("api ready")
"""


def defaults_of(core: Core) -> dict[str, Any]:
    store = core.store
    return {
        "mesh": store.get(MESH, "default", "default"),
        "signing_key": store.get(SECRET, "kuma.system", "dataplane-token-signing-key"),
        "admin_token": store.get(SECRET, "kuma.system", "admin-token"),
    }


def test_four_workers_and_two_api_processes_create_each_default_once(
    own_pg_database: dict[str, str],
    amqp_uri: str,
    start_worker: Callable[..., Worker],
    tmp_path: Path,
) -> None:
    env = worker_env(own_pg_database, amqp_uri, tmp_path)
    workers = [
        start_worker({**env, "KUMA_WORKER_HEALTH_FILE": str(tmp_path / f"h{i}")}, wait=False)
        for i in range(4)
    ]
    apis = [
        subprocess.Popen(
            [sys.executable, "-c", API_SCRIPT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    api_logs = [p.communicate(timeout=60)[0] for p in apis]
    assert all(p.returncode == 0 for p in apis), api_logs
    for worker in workers:
        worker.wait_healthy()
    logs = [w.log() for w in workers] + api_logs
    assert sum(text.count("created Mesh 'default'") for text in logs) == 1, logs
    core = open_core(cfg_of(env))
    try:
        for name, record in defaults_of(core).items():
            assert record.version == 1, f"{name} was rewritten"
    finally:
        core.close()


def _race(env: dict[str, str], barrier: Any, api: bool, results: Any) -> None:
    """One starter: a worker's `ensure_defaults`, or the API's start-up, at the barrier."""
    from services.worker.housekeeping import ensure_defaults

    cfg = cfg_of(env)
    core = open_core(cfg)
    try:
        barrier.wait(timeout=30)
        if api:
            from kuma.admin_token import ensure_admin_token
            from kuma.tokens import ensure_signing_key
            from kuma.wiring import ensure_default_mesh

            created = ensure_default_mesh(cfg, core.manager)
            token = ensure_admin_token(cfg, core.store)
            key = ensure_signing_key(core.store).public_key().public_bytes_raw()
        else:
            found = ensure_defaults(cfg, core)
            created, token, key = found.mesh_created, found.admin_token, found.signing_key_public
        results.put((created, token, key))
    finally:
        core.close()


def test_concurrent_starters_at_one_barrier_create_each_default_once(
    own_pg_database: dict[str, str],
) -> None:
    env = pg_env(own_pg_database)
    migrate.migrate(" ".join(f"{k}={v}" for k, v in own_pg_database.items()))
    ctx = multiprocessing.get_context("spawn")
    starters = 8
    barrier, results = ctx.Barrier(starters), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(env, barrier, i % 2 == 0, results)) for i in range(starters)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert sum(created for created, _, _ in outcomes) == 1  # one Mesh creator
    assert len({token for _, token, _ in outcomes}) == 1  # everyone uses the one stored token
    assert len({key for _, _, key in outcomes}) == 1  # ... and the one signing key
    core = open_core(cfg_of(env))
    try:
        assert all(record.version == 1 for record in defaults_of(core).values())
    finally:
        core.close()


REPLICA_SCRIPT = """
import os, sys, time
from kuma import heartbeat
from kuma.config import load_config
from kuma.wiring import open_store
store = open_store(load_config())
print("beating", flush=True)
while True:
    heartbeat.beat(store, sys.argv[1])
    time.sleep(0.2)
"""


def _subscription(instance: str) -> Subscription:
    return Subscription(
        id=f"stream-{instance}",
        control_plane_instance_id=instance,
        connect_time=datetime.now(UTC),
    )


def _online(core: Core, name: str) -> bool:
    spec: DataplaneInsightSpec = core.store.get(DATAPLANE_INSIGHT, "default", name).spec
    return spec.is_online()


@pytest.fixture()
def replicas(tmp_path: Path) -> Iterator[Callable[[dict[str, str], str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], instance: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", REPLICA_SCRIPT, instance],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "beating"
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_killed_replica_goes_offline_within_two_sweep_intervals(
    own_pg_database: dict[str, str],
    amqp_uri: str,
    start_worker: Callable[..., Worker],
    replicas: Callable[[dict[str, str], str], subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    interval = 1.0
    env = worker_env(
        own_pg_database,
        amqp_uri,
        tmp_path,
        KUMA_WORKER_SWEEP_INTERVAL=f"{interval}s",
        KUMA_WORKER_HEARTBEAT_TIMEOUT=f"{interval}s",
        KUMA_WORKER_INSIGHT_CLEANUP_INTERVAL="1s",
        KUMA_WORKER_INSIGHT_KEEP_CLOSED="1",
    )
    start_worker(env)
    core = open_core(cfg_of(env))
    try:
        doomed, survivor = replicas(env, "replica-doomed"), replicas(env, "replica-survivor")
        for instance, dataplane in (("replica-doomed", "dp-1"), ("replica-survivor", "dp-2")):
            spec = DataplaneInsightSpec(subscriptions=[_subscription(instance)])
            core.store.create(Resource(DATAPLANE_INSIGHT, "default", dataplane, spec))
        time.sleep(2 * interval)  # a few sweeps while both beat: nothing changes
        assert _online(core, "dp-1") and _online(core, "dp-2")

        os.kill(doomed.pid, signal.SIGKILL)
        killed = time.monotonic()
        while _online(core, "dp-1"):
            assert time.monotonic() - killed < 2 * interval + interval + 1.0, "still online"
            time.sleep(0.05)
        # timeout (one interval) + at most one sweep interval, plus scheduling slack
        assert time.monotonic() - killed <= 3 * interval + 0.5
        assert _online(core, "dp-2")
        assert survivor.poll() is None
        assert "replica-doomed" not in {hb.instance_id for hb in heartbeat.heartbeats(core.store)}

        # Reconnecting elsewhere: the survivor's replica writes a new open subscription.
        current = core.store.get(DATAPLANE_INSIGHT, "default", "dp-1")
        reconnected = DataplaneInsightSpec(
            subscriptions=[*current.spec.subscriptions, _subscription("replica-survivor")]
        )
        core.store.update(
            Resource(DATAPLANE_INSIGHT, "default", "dp-1", reconnected, current.version)
        )
        time.sleep(2 * interval)
        assert _online(core, "dp-1")

        # The clean-up timer keeps one closed subscription per Dataplane.
        closed = [
            Subscription(
                id=f"old-{i}",
                control_plane_instance_id="gone",
                connect_time=datetime.now(UTC) - timedelta(hours=1, minutes=i),
                disconnect_time=datetime.now(UTC) - timedelta(hours=1, minutes=i - 1),
            )
            for i in range(4)
        ]
        current = core.store.get(DATAPLANE_INSIGHT, "default", "dp-2")
        core.store.update(
            Resource(
                DATAPLANE_INSIGHT,
                "default",
                "dp-2",
                DataplaneInsightSpec(subscriptions=[*closed, *current.spec.subscriptions]),
                current.version,
            )
        )
        deadline = time.monotonic() + 5
        while True:
            subs = core.store.get(DATAPLANE_INSIGHT, "default", "dp-2").spec.subscriptions
            if len(subs) == 2:
                break
            assert time.monotonic() < deadline, subs
            time.sleep(0.1)
        assert [s.id for s in subs] == ["old-0", "stream-replica-survivor"]
    finally:
        core.close()
