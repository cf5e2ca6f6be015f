"""`kuma-bootstrap` as a real process under gunicorn, configured by KUMA_* env vars."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.kuma_dp.harness import clean_env
from tests.prom_text import sample_sum
from tests.waiting import wait_until
from tests.xds_ads.harness import free_port

pytestmark = pytest.mark.slow


def _serving(url: str) -> bool:
    try:
        return requests.post(f"{url}/bootstrap", data=b"x", timeout=1).status_code == 400
    except (requests.ConnectionError, requests.Timeout):
        return False


def test_gunicorn_process_answers_and_honours_the_token_switch(tmp_path: Path):
    exe = str(Path(sys.executable).with_name("kuma-bootstrap"))
    for token_on, expected in (("true", 401), ("false", 404)):
        port = free_port()
        env = clean_env(
            HOME=str(tmp_path),
            KUMA_BOOTSTRAP_SERVER_PORT=str(port),
            KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED=token_on,
            KUMA_GENERAL_TRUST_LOOPBACK="false",
            KUMA_BOOTSTRAP_WORKERS="1",
        )
        proc = subprocess.Popen(
            [exe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda u=url: _serving(u), 20, "kuma-bootstrap to serve")
            response = requests.post(
                f"{url}/bootstrap", json={"mesh": "default", "name": "dp-1"}, timeout=5
            )
            assert response.status_code == expected, response.text
        finally:
            proc.terminate()
            assert proc.wait(15) == 0, proc.stderr.read() if proc.stderr else ""
    # No gunicorn control socket in $HOME: the services of one host would share its one path.
    assert list(tmp_path.iterdir()) == []


def test_metrics_count_the_bootstraps_of_every_worker(tmp_path: Path):
    port = free_port()
    env = clean_env(
        HOME=str(tmp_path),
        KUMA_BOOTSTRAP_SERVER_PORT=str(port),
        KUMA_GENERAL_TRUST_LOOPBACK="false",
        KUMA_BOOTSTRAP_WORKERS="2",
    )
    exe = str(Path(sys.executable).with_name("kuma-bootstrap"))
    proc = subprocess.Popen([exe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _serving(url), 20, "kuma-bootstrap to serve")
        for _ in range(6):  # a new connection each: either worker takes it
            response = requests.post(
                f"{url}/bootstrap",
                json={"mesh": "default", "name": "dp-1"},
                headers={"Connection": "close"},
                timeout=5,
            )
            assert response.status_code == 401
        for _ in range(4):  # whichever worker answers the scrape counts all six
            body = requests.get(f"{url}/metrics", timeout=5).text
            count = sample_sum(
                body,
                "dp_server_http_request_duration_seconds_count",
                handler="/bootstrap",
                method="POST",
                code="401",
            )
            assert count == 6
    finally:
        proc.terminate()
        proc.wait(15)
