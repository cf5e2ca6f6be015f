"""A second control plane must not take a share of a busy xDS port. gRPC servers set
SO_REUSEPORT unless told otherwise: then a second `kuma-cp run` (or `kuma-xds`) given the same
xDS port starts without a word, and the kernel hands it part of the Envoys' new connections: to
a process with another store, another certificate and none of their state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.harness import BIN, ControlPlane, Processes, wait_gone
from tests.waiting import wait_until

pytestmark = [pytest.mark.security, pytest.mark.slow]


def test_a_busy_xds_port_stops_a_second_control_plane(tmp_path: Path) -> None:
    procs = Processes(tmp_path)
    try:
        first = ControlPlane(procs)
        first.start()
        second = ControlPlane(procs, "second", KUMA_XDS_SERVER_GRPC_PORT=str(first.xds_port))
        proc = procs.start(second.name, [str(BIN / "kuma-cp"), "run"], second.env)
        # It either gives up, or gets as far as serving xDS (the last thing it starts).
        wait_until(
            lambda: proc.poll() is not None or "xDS (ADS) listening" in procs.log(second.name),
            30,
            "the second kuma-cp to give up or serve xDS",
        )
        log = procs.log(second.name)
        assert wait_gone(proc, 5) not in (None, 0), f"a second kuma-cp serves xDS: {log[-600:]}"
        assert str(first.xds_port) in log, log[-2000:]
    except BaseException:
        print(procs.logs())
        raise
    finally:
        procs.stop_all()
