from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.topology import PrivatePostgres, PrivateRedis, Topology


@contextmanager
def running(topo: Topology, request: pytest.FixtureRequest) -> Iterator[Topology]:
    """Start the control plane; print every log if it fails to start or the test fails; stop
    every process afterwards."""
    try:
        topo.start_control_plane()
        yield topo
    except BaseException:
        print(topo.logs())
        raise
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(topo.logs())
        topo.stop()


@pytest.fixture()
def topology(
    tmp_path: Path,
    own_pg_database: dict[str, str],
    redis_prefix: str,
    amqp_uri: str,
    request: pytest.FixtureRequest,
) -> Iterator[Topology]:
    topo = Topology(tmp_path, own_pg_database, redis_prefix + "changes", amqp_uri)
    with running(topo, request):
        yield topo


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test only: the test may stop and restart it."""
    server = PrivateRedis(tmp_path)  # fails with what is missing (a binary, the postgres user)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture()
def topology_on_private_redis(
    tmp_path: Path,
    own_pg_database: dict[str, str],
    private_redis: PrivateRedis,
    amqp_uri: str,
    request: pytest.FixtureRequest,
) -> Iterator[Topology]:
    """The topology with its change feed on `private_redis` (torn down before it)."""
    topo = Topology(
        tmp_path, own_pg_database, "kuma:changes", amqp_uri, redis_url=private_redis.url
    )
    topo.extra_logs["redis-server"] = private_redis.log
    with running(topo, request):
        yield topo


@pytest.fixture()
def private_postgres() -> Iterator[PrivatePostgres]:
    """A Postgres cluster of this test only: the test may stop and restart it."""
    server = PrivatePostgres()  # fails with what is missing (a binary, the postgres user)
    try:
        server.init()
        yield server
    finally:
        server.destroy()


@pytest.fixture()
def topology_on_private_postgres(
    tmp_path: Path,
    private_postgres: PrivatePostgres,
    redis_prefix: str,
    amqp_uri: str,
    request: pytest.FixtureRequest,
) -> Iterator[Topology]:
    """The topology with its store on `private_postgres` (torn down before it)."""
    topo = Topology(tmp_path, private_postgres.params, redis_prefix + "changes", amqp_uri)
    topo.extra_logs["postgres"] = private_postgres.log
    with running(topo, request):
        yield topo


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ARG001
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
