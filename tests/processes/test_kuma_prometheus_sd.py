"""`kuma-prometheus-sd run` as the README runs it, against a real `kuma-cp run` (issue 19 item 2):
on the control plane's own host it needs neither the admin token nor the CA (same-host trust;
it takes the certificate the server presents, as Kuma 0.3.2 did, and warns), and its file follows
the Dataplanes. A wrong admin token is refused with a message that says so, and nothing is
written. (Prometheus itself reading the file: tests/integration/test_prometheus_sd.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.security.harness import BIN, ControlPlane, Processes, clean_env

pytestmark = pytest.mark.slow

MESH = {"type": "Mesh", "name": "default", "metrics": {"prometheus": {}}}
WEB = {
    "type": "Dataplane",
    "mesh": "default",
    "name": "web-1",
    "networking": {"inbound": [{"interface": "10.0.0.1:80:8080", "tags": {"service": "web"}}]},
}


@pytest.fixture()
def procs(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture()
def cp(procs: Processes) -> ControlPlane:
    control_plane = ControlPlane(procs)  # general.trustLoopback on, as by default
    control_plane.start()
    control_plane.apply(MESH)
    control_plane.apply(WEB)
    return control_plane


def _sd(procs: Processes, cp: ControlPlane, output: Path, *extra: str) -> None:
    argv = [str(BIN / "kuma-prometheus-sd"), "run", "--cp-address", cp.api]
    procs.start("kuma-prometheus-sd", [*argv, "--output-file", str(output), *extra], clean_env())


def _groups(output: Path) -> list[dict[str, Any]] | None:
    try:
        return json.loads(output.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def test_on_the_control_planes_host_nothing_else_is_needed(
    procs: Processes, cp: ControlPlane, tmp_path: Path
):
    output = tmp_path / "kuma.file_sd.json"
    _sd(procs, cp, output)
    groups = cp.wait_until(lambda: _groups(output), 30, "the Dataplane in the file_sd file")
    assert groups == [
        {
            "targets": ["10.0.0.1:5670"],
            "labels": {
                "__metrics_path__": "/metrics",
                "__scheme__": "http",
                "dataplane": "web-1",
                "instance": "web-1",
                "job": "web",
                "mesh": "default",
                "service": "web",
                "services": ",web,",
            },
        }
    ]
    deleted = cp.http.delete(f"{cp.api}/meshes/default/dataplanes/web-1", timeout=10)
    assert deleted.status_code == 200
    cp.wait_until(lambda: _groups(output) == [], 10, "the deleted Dataplane gone from the file")
    log = procs.log("kuma-prometheus-sd")
    assert "certificate is NOT verified" in log  # said, since no --ca-cert-file was given
    assert "terminated with an error" not in log, log


def test_a_wrong_admin_token_is_refused_and_nothing_is_written(
    procs: Processes, cp: ControlPlane, tmp_path: Path
):
    token = tmp_path / "admin.token"
    token.write_text("not-the-admin-token\n")
    output = tmp_path / "kuma.file_sd.json"
    _sd(procs, cp, output, "--admin-token-file", str(token), "--ca-cert-file", str(cp.ca_file))
    cp.wait_until(
        lambda: "UNAUTHENTICATED: invalid admin token" in procs.log("kuma-prometheus-sd"),
        15,
        "kuma-prometheus-sd saying its token was refused",
    )
    assert not output.exists()
