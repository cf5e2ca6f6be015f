from __future__ import annotations

from collections.abc import Iterator

import pytest

from kuma.wiring import Core
from tests.bootstrap.servers import BootstrapServer, make_config, open_test_core, serve_bootstrap


@pytest.fixture()
def core() -> Iterator[Core]:
    core = open_test_core(make_config())
    yield core
    core.close()


@pytest.fixture()
def bootstrap(core: Core) -> Iterator[BootstrapServer]:
    server = serve_bootstrap(make_config(), core)
    yield server
    server.stop()
