"""The seed article's walk-through, as a user types it: `kuma-cp run`, two Dataplanes applied
with `kumactl apply -f -` from stdin, two `kuma-dp run` with the article's env vars, and the
machine's real Redis answering PING through two Envoys."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.integration.topology import wait_until
from tests.ports import cp_ports, free_port

BIN = Path(sys.executable).parent


MTLS_ON = """type: Mesh
name: default
mtls:
  enabled: true
  ca:
    builtin: {}
"""
PERMISSION = """type: TrafficPermission
mesh: default
name: backend-to-redis
sources:
- match:
    service: backend
destinations:
- match:
    service: redis
"""


class Processes:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name, proc in reversed(self.procs):
            proc.terminate()
            try:
                codes[name] = proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.tmp / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name, _ in self.procs
        )


@pytest.fixture()
def processes(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(procs.logs())  # pytest shows it with the failure


def test_seed_walkthrough(processes: Processes, tmp_path: Path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    ports = cp_ports()
    cp = processes.start("kuma-cp", [str(BIN / "kuma-cp"), "run"], {**base, **ports})
    api = f"http://127.0.0.1:{ports['KUMA_API_SERVER_PORT']}"

    def api_up() -> bool:
        assert cp.poll() is None, f"kuma-cp run exited with {cp.returncode}"
        return requests.get(api, timeout=1).ok

    wait_until(api_up, 30, "kuma-cp API")

    home = tmp_path / "home"
    home.mkdir()
    user_env = {**base, "HOME": str(home)}

    def kumactl(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(BIN / "kumactl"), *args],
            input=stdin,
            env=user_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    kumactl("config", "control-planes", "add", "--name", "local", "--address", api, "--overwrite")
    dp_port, out_port = free_port(), free_port()
    kumactl(
        "apply",
        "-f",
        "-",
        stdin=f"""type: Dataplane
mesh: default
name: redis-1
networking:
  inbound:
  - interface: 127.0.0.1:{dp_port}:6379
    tags:
      service: redis
""",
    )
    kumactl(
        "apply",
        "-f",
        "-",
        stdin=f"""type: Dataplane
mesh: default
name: backend-1
networking:
  inbound:
  - interface: 127.0.0.1:{free_port()}:{free_port()}
    tags:
      service: backend
  outbound:
  - interface: :{out_port}
    service: redis
""",
    )
    admin = {}
    for name in ("redis-1", "backend-1"):
        admin[name] = free_port()
        processes.start(
            name,
            [str(BIN / "kuma-dp"), "run"],
            {
                **base,
                "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL": f"http://127.0.0.1:{ports['KUMA_BOOTSTRAP_SERVER_PORT']}",
                "KUMA_DATAPLANE_MESH": "default",
                "KUMA_DATAPLANE_NAME": name,
                "KUMA_DATAPLANE_ADMIN_PORT": str(admin[name]),
                "KUMA_DATAPLANE_RUNTIME_CONFIG_DIR": str(tmp_path / name),
            },
        )
    client = redis.Redis(host="127.0.0.1", port=out_port, socket_timeout=2)
    try:
        wait_until(client.ping, 30, "PONG from Redis through two Envoys")
    except AssertionError:
        pytest.fail("no PONG through the mesh\n" + processes.logs())
    finally:
        client.close()

    # Envoy's admin answers on the port kuma-dp was given (the seed's 9901 note).
    assert (
        requests.get(f"http://127.0.0.1:{admin['backend-1']}/ready", timeout=2).text.strip()
        == "LIVE"
    )
    table = wait_until(
        lambda: (t := kumactl("inspect", "dataplanes")).count("Online") == 2 and t,
        10,
        "both dataplanes Online",
    )
    assert "backend-1" in table and "redis-1" in table

    # mTLS on the default Mesh: traffic stops until a TrafficPermission lets backend reach redis.
    def ping() -> bool:
        fresh = redis.Redis(host="127.0.0.1", port=out_port, socket_timeout=2)
        try:
            return bool(fresh.ping())
        except redis.RedisError:
            return False
        finally:
            fresh.close()

    kumactl("apply", "-f", "-", stdin=MTLS_ON)
    wait_until(lambda: not ping(), 20, "traffic denied with mTLS and no TrafficPermission")
    kumactl("apply", "-f", "-", stdin=PERMISSION)
    wait_until(ping, 20, "traffic allowed by the TrafficPermission")
    # ... over mutual TLS: both Envoys hold their SPIFFE identities.
    for name, service in (("backend-1", "backend"), ("redis-1", "redis")):
        certs = requests.get(f"http://127.0.0.1:{admin[name]}/certs", timeout=2).text
        assert f"spiffe://default/{service}" in certs
    kumactl("delete", "traffic-permission", "backend-to-redis")
    wait_until(lambda: not ping(), 20, "new connections denied again")

    codes = processes.stop_all()
    assert codes == {"backend-1": 0, "redis-1": 0, "kuma-cp": 0}, processes.logs()
