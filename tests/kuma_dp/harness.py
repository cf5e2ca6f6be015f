"""Running the real `kuma-dp` console script as a subprocess, and a fake API `/catalog`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kuma.edge.wsgi_server import ThreadedWsgiServer

KUMA_DP = str(Path(sys.executable).with_name("kuma-dp"))


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any KUMA_* setting of the machine, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env.update(extra)
    return env


def run_dp(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Any:
    """`kuma-dp run ARGS` to completion: (status, stderr)."""
    result = subprocess.run(
        [KUMA_DP, "run", *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.returncode, result.stderr


def start_dp(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        [KUMA_DP, "--log-level", "info", "run", *args],
        env=env or clean_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def serve_catalog(bootstrap_url: str, token_api: bool) -> ThreadedWsgiServer:
    """An API that answers only `GET /catalog` (spec §4.8)."""
    local = "http://127.0.0.1:5679" if token_api else ""
    body = json.dumps(
        {
            "apis": {
                "bootstrap": {"url": bootstrap_url},
                "dataplaneToken": {"localUrl": local, "publicUrl": ""},
            }
        }
    ).encode()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] != "/catalog":
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    server = ThreadedWsgiServer(app, "127.0.0.1", 0, name="catalog")
    server.start()
    return server
