"""The seed article's walk-through, as a user types it: `kuma-cp run`, two Dataplanes applied
with `kumactl apply -f -` from stdin, two `kuma-dp run` with the article's env vars, and the
machine's real Redis answering PING through two Envoys. Then its mTLS steps, once with the
builtin CA and once with a provided one (`kumactl manage ca provided certificates add`), on the
same running mesh: the set-up is paid once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.ca_certs import write_ca
from tests.ports import cp_ports, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.envoy

BIN = Path(sys.executable).parent


MTLS = """type: Mesh
name: default
mtls:
  enabled: {enabled}
  ca:
    {ca}: {{}}
"""
PROVIDED_SERIAL = 0x5EED
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


@dataclass
class Walkthrough:
    processes: Processes
    kumactl: Callable[..., str]
    admin: dict[str, int]  # Envoy admin port of each dataplane
    out_port: int  # backend-1's outbound to redis
    tmp: Path

    def ping(self) -> bool:
        """One PING on a new connection, no retries (redis-py retries three times, with
        seconds of back-off, by default: a denied connection would take that long to say so)."""
        fresh = redis.Redis(
            host="127.0.0.1", port=self.out_port, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        try:
            return bool(fresh.ping())
        except redis.RedisError:
            return False
        finally:
            fresh.close()

    def certs(self, name: str) -> list[dict]:
        answer = requests.get(f"http://127.0.0.1:{self.admin[name]}/certs", timeout=2)
        return list(answer.json().get("certificates", []))


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    """Everything up to PONG through two Envoys, as the article types it."""
    tmp_path = tmp_path_factory.mktemp("walkthrough")
    processes = Processes(tmp_path)
    try:
        yield _set_up(processes, tmp_path)
    except BaseException:
        print(processes.logs())
        raise
    finally:
        processes.stop_all()


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "walkthrough" in request.fixturenames:
        print(request.getfixturevalue("walkthrough").processes.logs())


def _set_up(processes: Processes, tmp_path: Path) -> Walkthrough:
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
    walkthrough = Walkthrough(processes, kumactl, admin, out_port, tmp_path)
    wait_until(walkthrough.ping, 30, "PONG from Redis through two Envoys")
    return walkthrough


def test_seed_walkthrough(walkthrough: Walkthrough):
    # Envoy's admin answers on the port kuma-dp was given (the seed's 9901 note).
    ready = requests.get(f"http://127.0.0.1:{walkthrough.admin['backend-1']}/ready", timeout=2)
    assert ready.text.strip() == "LIVE"
    table = wait_until(
        lambda: (t := walkthrough.kumactl("inspect", "dataplanes")).count("Online") == 2 and t,
        10,
        "both dataplanes Online",
    )
    assert "backend-1" in table and "redis-1" in table


@pytest.mark.parametrize("ca", ["builtin", "provided"])
def test_seed_walkthrough_mtls(walkthrough: Walkthrough, ca: str):
    """mTLS on the default Mesh: traffic stops until a TrafficPermission lets backend reach
    redis. With `provided`, the operator's CA is uploaded first and signs both identities."""
    kumactl, ping = walkthrough.kumactl, walkthrough.ping
    if ca == "provided":
        certs = walkthrough.tmp / "operator-ca"
        certs.mkdir()
        cert_file, key_file = write_ca(certs, serial=PROVIDED_SERIAL)
        added = kumactl(
            "manage", "ca", "provided", "certificates", "add",
            "--cert-file", str(cert_file), "--key-file", str(key_file),
        )  # fmt: skip
        assert added.startswith('added certificate "')
    kumactl("apply", "-f", "-", stdin=MTLS.format(enabled="true", ca=ca))
    assert ["default", "on", ca, "off"] in [
        line.split() for line in kumactl("get", "meshes").splitlines()
    ]
    wait_until(lambda: not ping(), 20, "traffic denied with mTLS and no TrafficPermission")
    kumactl("apply", "-f", "-", stdin=PERMISSION)
    wait_until(ping, 20, "traffic allowed by the TrafficPermission")
    # ... over mutual TLS: both Envoys hold their SPIFFE identities, from the mesh's CA.
    for name, service in (("backend-1", "backend"), ("redis-1", "redis")):
        contexts = walkthrough.certs(name)
        uris = {
            san.get("uri")
            for ctx in contexts
            for cert in ctx.get("cert_chain", [])
            for san in cert.get("subject_alt_names", [])
        }
        assert f"spiffe://default/{service}" in uris
        roots = {int(c["serial_number"], 16) for ctx in contexts for c in ctx.get("ca_cert", [])}
        assert (roots == {PROVIDED_SERIAL}) == (ca == "provided"), roots
    kumactl("delete", "traffic-permission", "backend-to-redis")
    wait_until(lambda: not ping(), 20, "new connections denied again")
    # Back to plain text for whatever comes next.
    kumactl("apply", "-f", "-", stdin=MTLS.format(enabled="false", ca="builtin"))
    wait_until(ping, 20, "plain-text traffic again")


def test_everything_stops_cleanly(walkthrough: Walkthrough):
    codes = walkthrough.processes.stop_all()
    assert codes == {"backend-1": 0, "redis-1": 0, "kuma-cp": 0}, walkthrough.processes.logs()
