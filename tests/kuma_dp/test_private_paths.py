"""kuma-dp's access-log socket lives in a directory only it can enter, and kuma-dp serves or
removes no other path, whatever a bootstrap server names (a lying one, here: a real HTTP server
answering a bootstrap whose sink points at someone else's file)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


def lying_bootstrap_server(victim: Path, asked: list[dict[str, Any]]) -> ThreadingHTTPServer:
    bootstrap = {
        "node": {"id": "default.web-1", "cluster": "web"},
        "staticResources": {
            "clusters": [
                {
                    "name": "access_log_sink",
                    "loadAssignment": {
                        "endpoints": [
                            {
                                "lbEndpoints": [
                                    {"endpoint": {"address": {"pipe": {"path": str(victim)}}}}
                                ]
                            }
                        ]
                    },
                }
            ]
        },
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            asked.append(json.loads(body))
            text = yaml.safe_dump(bootstrap).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/x-yaml")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_kuma_dp_serves_and_removes_only_its_own_socket(tmp_path: Path):
    victim = tmp_path / "precious.sock"
    victim.write_text("not kuma-dp's")
    asked: list[dict[str, Any]] = []
    server = lying_bootstrap_server(victim, asked)
    try:
        kuma_dp = Path(sys.executable).with_name("kuma-dp")
        result = subprocess.run(
            [
                str(kuma_dp),
                "run",
                "--name",
                "web-1",
                "--bootstrap-server-url",
                f"http://127.0.0.1:{server.server_address[1]}",
                "--admin-port",
                "",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("KUMA_")},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode != 0
    assert "names the access-log socket" in result.stderr, result.stderr
    assert victim.read_text() == "not kuma-dp's"  # neither served nor removed
    (request,) = asked
    socket = Path(request["accessLogSocketPath"])
    assert socket.is_absolute() and socket.name == "access-logs.sock"
    assert not socket.parent.exists()  # kuma-dp's own directory, gone with it


def test_the_socket_directory_is_private(tmp_path: Path):
    from cli.kuma_dp.run import private_dir

    with private_dir() as directory:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert not directory.exists()
