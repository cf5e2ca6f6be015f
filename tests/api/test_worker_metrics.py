"""`/metrics` of a gunicorn service adds up all its workers (prometheus-client's multiprocess
mode, `kuma.prom`): requests served by either worker are counted, whichever worker answers the
scrape; the directory of the workers' files is the process tree's own, and gone after exit."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_processes import Processes, kuma_api

DURATION = "api_server_http_request_duration_seconds"


@pytest.fixture()
def processes(tmp_path: Path, kuma_env: dict[str, str]) -> Iterator[Processes]:
    # a directory a client names is not used: the service makes its own
    env = {**kuma_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    procs = Processes(tmp_path, env)
    try:
        yield procs
    finally:
        procs.kill_all()


def _served_meshes_lists(diag_url: str) -> float:
    body = requests.get(diag_url + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == DURATION + "_count"
        and sample.labels == {"handler": "/meshes", "method": "GET", "code": "200", "service": ""}
    )


def _worker_files(master_pid: int) -> set[Path]:
    """The metric files the workers have mapped (`/proc/<pid>/maps`)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return {
        Path(line.split(maxsplit=5)[5])
        for pid in children
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
        if line.endswith(".db") and "/histogram_" in line
    }


def test_metrics_count_the_requests_of_every_worker(processes: Processes, tmp_path: Path):
    proc = processes.start([*kuma_api(workers=2)], {"KUMA_API_THREADS": "1"})
    processes.wait_ready(proc)
    sent = 0
    deadline = time.monotonic() + 20
    served_by: set[str] = set()
    while len(served_by) < 2 and time.monotonic() < deadline:
        for _ in range(10):  # a new connection each: the workers take turns accepting
            r = requests.get(proc.api_url + "/meshes", headers={"Connection": "close"}, timeout=5)
            assert r.status_code == 200
            sent += 1
        files = _worker_files(proc.popen.pid)
        served_by = {f.name for f in files}
    assert len(served_by) == 2, f"one worker served all {sent} requests"
    (metrics_dir,) = {f.parent for f in files}  # one directory for both
    assert metrics_dir != tmp_path
    assert stat.S_IMODE(metrics_dir.stat().st_mode) == 0o700
    # every scrape, whichever worker answers it, counts all of them
    for _ in range(6):
        assert _served_meshes_lists(proc.diag_url) == sent
    proc.popen.terminate()
    proc.popen.wait(timeout=15)
    assert not metrics_dir.exists()
    assert os.path.isdir(tmp_path)
