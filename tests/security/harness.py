"""Real processes for the attacker suite and the other-host test: `kuma-cp run` on free ports,
resources and dataplane tokens through its API, `kuma-dp run` + Envoy per Dataplane (on this host
or in a network namespace). Every process's output is kept for `logs()`; `stop_all()` ends them
(process groups: Envoy goes with its kuma-dp)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.netns import Netns
from tests.ports import CP_PORT_VARS, cp_ports, free_port
from tests.waiting import wait_until

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "security-suite-admin"


class Processes:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, argv: list[str], env: dict[str, str], netns: Netns | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            netns.argv(argv) if netns else argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # kuma-dp's Envoy goes down with it
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def stop_all(self) -> dict[str, int]:
        return {name: self.stop(name) for name in reversed(list(self.procs))}

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def logs(self, size: int = 4000) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-size:]}" for name in self.procs)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env["PYTHONPATH"] = str(ROOT)  # the attacker program imports tests.security
    env.update(extra)
    return env


class ControlPlane:
    """`kuma-cp run` (memory store) on free ports; writes go with the admin token."""

    def __init__(self, procs: Processes, name: str = "kuma-cp", **env: str):
        """`env`: more KUMA_* settings (a port named there is used instead of a free one)."""
        self.procs, self.name = procs, name
        self.ports = {**cp_ports(), **{k: v for k, v in env.items() if k in CP_PORT_VARS}}
        self.env = clean_env(KUMA_API_SERVER_ADMIN_TOKEN=ADMIN_TOKEN, **{**env, **self.ports})
        self.api = f"http://127.0.0.1:{self.ports['KUMA_API_SERVER_PORT']}"
        self.xds_port = int(self.ports["KUMA_XDS_SERVER_GRPC_PORT"])
        self.sds_port = int(self.ports["KUMA_SDS_SERVER_GRPC_PORT"])
        self.bootstrap_port = int(self.ports["KUMA_BOOTSTRAP_SERVER_PORT"])
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        self.ca = ""
        self.ca_file = procs.workdir / "control-plane-ca.pem"

    def start(self) -> None:
        self.proc = self.procs.start(self.name, [str(BIN / "kuma-cp"), "run"], self.env)
        self.wait_until(lambda: self.http.get(self.api, timeout=1).ok, 30, "kuma-cp's API")
        self.wait_until(
            lambda: ssl.get_server_certificate(("127.0.0.1", self.xds_port), timeout=1),
            30,
            "kuma-cp's xDS port (TLS)",
        )
        self.ca = ssl.get_server_certificate(("127.0.0.1", self.xds_port), timeout=5)
        self.ca_file.write_text(self.ca)

    def wait_until(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """wait_until, failing at once if kuma-cp has exited."""

        def alive_and(check: Callable[[], Any] = check) -> Any:
            assert self.proc.poll() is None, f"kuma-cp run exited with {self.proc.returncode}"
            return check()

        return wait_until(alive_and, timeout, what)

    def apply(self, resource: dict[str, Any]) -> None:
        kind, name = resource["type"], resource["name"]
        if kind == "Mesh":
            path = f"/meshes/{name}"
        else:
            plural = {"Dataplane": "dataplanes", "TrafficPermission": "traffic-permissions"}[kind]
            path = f"/meshes/{resource['mesh']}/{plural}/{name}"
        answer = self.http.put(self.api + path, json=resource, timeout=10)
        assert answer.status_code in (200, 201), f"PUT {path}: {answer.status_code} {answer.text}"

    def token(self, name: str, mesh: str = "default") -> str:
        answer = self.http.post(self.api + "/tokens", json={"mesh": mesh, "name": name}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.text

    def rss_kib(self) -> int:
        """kuma-cp's resident memory (VmRSS, KiB)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")


def mtls_mesh(cp: ControlPlane, permissions: list[tuple[str, str]]) -> None:
    """The default Mesh with mTLS (builtin CA), and a TrafficPermission per (source, destination)
    service pair."""
    cp.apply({"type": "Mesh", "name": "default", "mtls": {"enabled": True, "ca": {"builtin": {}}}})
    for source, destination in permissions:
        cp.apply(
            {
                "type": "TrafficPermission",
                "mesh": "default",
                "name": f"{source}-to-{destination}".replace("*", "any"),
                "sources": [{"match": {"service": source}}],
                "destinations": [{"match": {"service": destination}}],
            }
        )


# A GET from inside a namespace (or here): the body, or "" when it failed.
_GET = """
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode(), end="")
except Exception as exc:
    print(f"ERROR {exc}", file=sys.stderr)
"""


def http_get(url: str, netns: Netns | None = None, timeout: float = 2.0) -> str:
    """GET `url` on a new connection, from this host or from inside `netns`: the body, or ""."""
    if netns is not None:
        result = netns.run([sys.executable, "-c", _GET, url, str(timeout)], timeout=timeout + 10)
        return result.stdout
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.read().decode()
    except OSError:
        return ""


class Dataplane:
    """A registered Dataplane and its `kuma-dp run` (+ Envoy), here or inside `netns`."""

    def __init__(
        self,
        cp: ControlPlane,
        name: str,
        inbound: str,
        service: str,
        outbound: list[tuple[int, str]] | None = None,
        netns: Netns | None = None,
    ):
        self.cp, self.name, self.service, self.netns = cp, name, service, netns
        self.admin_port = free_port()
        self.config_dir = cp.procs.workdir / f"{name}-config"
        self.token_file = cp.procs.workdir / f"{name}.token"
        cp.apply(
            {
                "type": "Dataplane",
                "mesh": "default",
                "name": name,
                "networking": {
                    "inbound": [{"interface": inbound, "tags": {"service": service}}],
                    "outbound": [
                        {"interface": f":{port}", "service": target}
                        for port, target in outbound or []
                    ],
                },
            }
        )

    def start(self, token: bool = True, bootstrap_url: str = "", ca: bool = True) -> None:
        args = [
            str(BIN / "kuma-dp"),
            "run",
            "--name",
            self.name,
            "--mesh",
            "default",
            "--bootstrap-server-url",
            bootstrap_url or f"http://127.0.0.1:{self.cp.bootstrap_port}",
            "--admin-port",
            str(self.admin_port),
            "--config-dir",
            str(self.config_dir),
            "--drain-time",
            "1s",
        ]
        tail = ["--", "--log-level", "warning"]  # Envoy's own log: what went wrong only
        if token:
            self.token_file.write_text(self.cp.token(self.name) + "\n")
            args += ["--dataplane-token-file", str(self.token_file)]
        if ca:
            args += ["--ca-cert-file", str(self.cp.ca_file)]
        self.proc = self.cp.procs.start(self.name, [*args, *tail], clean_env(), self.netns)

    def stop(self) -> int:
        return self.cp.procs.stop(self.name)

    def admin(self, path: str) -> str:
        return http_get(f"http://127.0.0.1:{self.admin_port}{path}", self.netns)

    def config_dump(self, resource: str = "") -> dict[str, Any]:
        text = self.admin("/config_dump" + (f"?resource={resource}" if resource else ""))
        return json.loads(text) if text else {}

    def listeners(self) -> list[Any]:
        """Envoy's dynamic listeners as it holds them (with their versions and update times)."""
        return self.config_dump("dynamic_listeners").get("configs", [])

    def has_identity(self) -> bool:
        return f"spiffe://default/{self.service}" in self.admin("/certs")

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, (
                f"kuma-dp {self.name} exited with {self.proc.returncode}"
            )
            return self.has_identity() and bool(self.listeners())

        self.cp.wait_until(ready, timeout, f"{self.name}'s Envoy with listeners and its identity")


def wait_gone(proc: subprocess.Popen[Any], timeout: float) -> int | None:
    """The exit code, once `proc` ended within `timeout` s; None if it still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.1)
    return None
