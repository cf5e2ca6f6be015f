"""One logging setup for every binary (kuma/logs.py): Kuma's tab layout with ISO 8601 times,
JSON lines with KUMA_LOG_FORMAT=json, `--log-level off|info|debug` before or after the
subcommand, and gunicorn's workers logging the same way."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from cli.kuma_dp.main import cli as kuma_dp
from cli.kuma_prometheus_sd.main import cli as kuma_prometheus_sd
from cli.kumactl.main import cli as kumactl
from services.api.main import main as kuma_api
from services.bootstrap.main import main as kuma_bootstrap
from services.cp.main import cli as kuma_cp
from services.gui.main import main as kuma_gui
from services.injector.main import main as kuma_injector
from services.worker.main import main as kuma_worker
from services.xds.main import cli as kuma_xds
from tests.kuma_dp.harness import clean_env
from tests.ports import cp_ports, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# 2024-05-01T12:00:00.123Z or ...123+0200, then level, logger, message
LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})\t(DEBUG|INFO|WARN|ERROR|FATAL)\t\S+\t"
)

# (command, arguments before the place the option goes, arguments after it)
POSITIONS: list[tuple[click.Command, list[str], list[str]]] = [
    (kuma_cp, [], ["run"]),
    (kuma_cp, ["run"], []),
    (kuma_cp, ["migrate", "up"], []),
    (kuma_dp, [], ["run"]),
    (kuma_dp, ["run"], []),
    (kumactl, [], ["get", "meshes"]),
    (kumactl, ["get", "meshes"], []),
    (kuma_xds, [], []),
    (kuma_worker, [], []),
    (kuma_api, [], []),
    (kuma_bootstrap, [], []),
    (kuma_injector, [], []),
    (kuma_injector, ["run"], []),
    (kuma_injector, [], ["run"]),
    (kuma_gui, [], []),
    (kuma_prometheus_sd, [], ["run"]),
    (kuma_prometheus_sd, ["run"], []),
]


@pytest.mark.parametrize(
    ("command", "before", "after"),
    POSITIONS,
    ids=[f"{c.name} {' '.join(b)} --log-level {' '.join(a)}" for c, b, a in POSITIONS],
)
def test_every_binary_has_the_log_level_option_where_users_type_it(
    command: click.Command, before: list[str], after: list[str]
):
    result = CliRunner().invoke(command, [*before, "--log-level", "loud", *after])
    assert result.exit_code == 2
    assert "'loud' is not one of 'off', 'info', 'debug'" in result.output


def _start_cp(*argv: str, **env: str) -> str:
    """`kuma-cp ARGV` until its API answers, then stopped: what it wrote to stderr."""
    ports = cp_ports()
    proc = subprocess.Popen(
        [str(BIN / "kuma-cp"), *argv],
        env=clean_env(**ports, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{ports['KUMA_API_SERVER_PORT']}/meshes"
    try:
        wait_until(lambda: requests.get(url, timeout=1).ok, 20, "kuma-cp's API")
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    return stderr


def test_kuma_cp_logs_in_kumas_layout_and_the_level_after_run_wins():
    lines = _start_cp("--log-level", "off", "run", "--log-level", "info").splitlines()
    assert any("\tINFO\tkuma-cp\tCurrent config {" in line for line in lines), lines
    assert all(LINE.match(line) for line in lines if not line.startswith(" ")), lines
    assert _start_cp("run", "--log-level", "off") == ""


def test_json_lines_for_log_shippers():
    stderr = _start_cp("run", KUMA_LOG_FORMAT="json")
    entries = [json.loads(line) for line in stderr.splitlines()]
    started = [e for e in entries if e["msg"].startswith("Current config {")]
    assert started and started[0]["level"] == "info" and started[0]["logger"] == "kuma-cp"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", started[0]["ts"])


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_warning_is_one_line_with_time_and_level(log_format: str):
    """Python's warnings (a dependency's DeprecationWarning at import) go through the same
    layout, on one line: `warnings` appends the source line and a blank line."""
    script = "from kuma import logs; logs.setup('info'); import warnings; warnings.warn('old API')"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(KUMA_LOG_FORMAT=log_format),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    if log_format == "json":
        entry = json.loads(line)
        assert (entry["level"], entry["logger"]) == ("warn", "py.warnings")
        assert entry["msg"].endswith("UserWarning: old API")
    else:
        assert LINE.match(line) and "\tWARN\tpy.warnings\t" in line, line
        assert line.endswith("UserWarning: old API"), line


def test_an_unknown_log_format_is_a_usage_error():
    result = subprocess.run(
        [str(BIN / "kuma-cp"), "version"],
        env=clean_env(KUMA_LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "KUMA_LOG_FORMAT must be one of console, json (got 'xml')" in result.stderr


@pytest.mark.parametrize("level", ["info", "off"])
def test_gunicorn_workers_log_what_the_service_logs(tmp_path: Path, level: str):
    """An INFO line from inside a gunicorn worker (it made the TLS certificate) reaches
    stderr in Kuma's layout, with gunicorn's own lines and no access log; `off` silences all."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "kuma-bootstrap"), "--workers", "1", "--log-level", level],
        env=clean_env(HOME=str(tmp_path), KUMA_BOOTSTRAP_SERVER_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/bootstrap"
    try:
        wait_until(lambda: requests.post(url, data=b"{", timeout=1).status_code == 400, 20, "a 400")
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    lines = stderr.splitlines()
    if level == "off":
        assert lines == []
        return
    assert any("\tINFO\tkuma.tls\t" in line for line in lines), lines
    assert any("\tINFO\tgunicorn.error\tBooting worker" in line for line in lines), lines
    assert all(LINE.match(line) for line in lines), lines
    assert not any("POST /bootstrap" in line for line in lines), lines
