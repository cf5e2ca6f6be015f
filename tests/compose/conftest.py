"""The compose stack, brought up once for the module that asks for it and removed afterwards
(`down -v`, then whatever the project still holds). When a test (or bringing the stack up)
fails, every container's logs go into that test's report."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.compose.stack import Stack, compose_command

_STACKS: list[Stack] = []
_DONE: list[Stack] = []
BUILD_TIMEOUT_S = 900
UP_TIMEOUT_S = 600
# What a run takes where Docker keeps its data, with the vfs storage driver (a full copy of the
# filesystem per layer and per container): about 21 GB at its peak, with the stack up.
FREE_DISK_GB = 25


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STACKS and item.get_closest_marker("compose"):
        for stack in _STACKS:
            try:
                logs = stack.logs()
            except Exception as exc:  # noqa: BLE001 (the test's own failure matters more)
                logs = f"(could not read the logs: {exc})"
            report.sections.append((f"every container of {stack.project}", logs))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The real docker-compose.yml, built and up (demo included), under a project name and
    host ports of its own."""
    s = Stack(compose_command())
    s.check_free_disk(FREE_DISK_GB)
    _STACKS.append(s)
    try:
        s.build(BUILD_TIMEOUT_S)
        s.up(timeout=UP_TIMEOUT_S)
        yield s
    finally:
        _STACKS.remove(s)
        _DONE.append(s)
        s.remove()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Where a compose run's minutes went (the part of CI with a time budget)."""
    for s in _DONE:
        steps = ", ".join(f"{what} {seconds:.0f} s" for what, seconds in s.timings)
        terminalreporter.write_line(f"compose {' '.join(s.command)} ({s.project}): {steps}")


@pytest.fixture(scope="session")
def kumactl_bin() -> str:
    """The host's kumactl: the one installed beside this Python, else on PATH."""
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "kumactl"
    found = str(beside) if beside.exists() else shutil.which("kumactl")
    if found is None:
        pytest.fail("kumactl is not installed: run ./scripts/test once (it installs .venv)")
    return found
