from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bootstrap.servers import BootstrapServer, make_config, served


@pytest.fixture()
def bootstrap() -> Iterator[BootstrapServer]:
    """A bootstrap server (token verification on) over a fresh memory store."""
    with served(make_config()) as server:
        yield server
