"""The tests' one deadline poll: never a bare sleep, and a timeout says what it waited for."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", every: float = 0.02
) -> Any:
    """Call `check` until it returns something truthy, and return that; an exception it raises
    counts as not yet. AssertionError naming `what` and the last answer once `timeout` passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 (keep polling; report the last one)
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}: {last!r}")
        time.sleep(every)
