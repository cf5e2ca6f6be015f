from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.topology import Topology


@pytest.fixture()
def topology(
    tmp_path: Path,
    own_pg_database: dict[str, str],
    redis_prefix: str,
    amqp_uri: str,
    request: pytest.FixtureRequest,
) -> Iterator[Topology]:
    topo = Topology(tmp_path, own_pg_database, redis_prefix + "changes", amqp_uri)
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


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ARG001
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
