"""The real docker-compose.yml, driven through whichever compose command this machine has
(`docker compose` v2, else `docker-compose` 1.29), as one project of its own per test run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import yaml

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# Every image the Dockerfile builds carries this label: what a run leaves dangling is pruned
# by it, and nothing else on the machine is touched.
BUILD_LABEL = "io.kuma-py.build"
STANDINS = "../shared/tools/container-standins/build.sh"
# Host ports the compose file publishes, by the variable that moves each one.
PORT_VARS = (
    "KUMA_COMPOSE_API_PORT",
    "KUMA_COMPOSE_DIAGNOSTICS_PORT",
    "KUMA_COMPOSE_BOOTSTRAP_PORT",
    "KUMA_COMPOSE_INJECTOR_PORT",
    "KUMA_COMPOSE_GUI_PORT",
)


class ComposeError(AssertionError):
    pass


def compose_command() -> list[str]:
    """`docker compose` when the v2 plugin answers, else `docker-compose`; a clear failure if
    neither (or no Docker engine) is there."""
    if shutil.which("docker") is None:
        raise ComposeError(f"docker is not installed: run `bash {STANDINS}` (needs root)")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        raise ComposeError(
            f"the Docker engine does not answer ({info.stderr.strip()[-300:]}): "
            f"run `bash {STANDINS}`, which starts dockerd"
        )
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if v2.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ComposeError(f"neither `docker compose` nor `docker-compose` exists: run `{STANDINS}`")


def docker(*args: str, timeout: float = 60, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise ComposeError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


class Stack:
    """One compose project: `compose(...)` runs the command on it, `logs()` gathers every
    container's logs, `remove()` takes down everything it made."""

    def __init__(self, command: Sequence[str]):
        self.command = list(command)
        self.project = "kumacompose" + uuid.uuid4().hex[:8]  # v1 keeps only [a-z0-9]
        self.host = "127.0.0.1"
        self.ports = {var: free_port(self.host) for var in PORT_VARS}
        self.env = {
            **os.environ,
            # compose v1 gives up on the engine after 60 s; removing a container where the
            # engine copies whole filesystems (vfs) can take longer
            "COMPOSE_HTTP_TIMEOUT": "600",
            "KUMA_COMPOSE_HOST_IP": self.host,
            **{var: str(port) for var, port in self.ports.items()},
        }
        self.api_url = f"http://{self.host}:{self.ports['KUMA_COMPOSE_API_PORT']}"
        # HTTPS: the certificate names localhost (and xds, bootstrap), not 127.0.0.1
        self.bootstrap_url = f"https://localhost:{self.ports['KUMA_COMPOSE_BOOTSTRAP_PORT']}"
        self.gui_url = f"http://{self.host}:{self.ports['KUMA_COMPOSE_GUI_PORT']}"
        self.timings: list[tuple[str, float]] = []  # the slow steps, for the run's summary

    def timed(self, what: str, since: float) -> None:
        self.timings.append((what, time.monotonic() - since))

    def check_free_disk(self, gigabytes: float) -> None:
        root = docker("info", "--format", "{{.DockerRootDir}}").strip()
        free = shutil.disk_usage(root).free / 1e9
        if free < gigabytes:
            raise ComposeError(
                f"{free:.1f} GB free under {root}: the compose tests want {gigabytes} GB "
                "(docker system df shows what Docker holds)"
            )

    def compose(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.command, "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise ComposeError(
                f"`{' '.join(argv[len(self.command) :])}` exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def build(self, timeout: float) -> None:
        """Build each image once: many services share one (compose would build it for each)."""
        services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
        one_each = {s["image"]: name for name, s in services.items() if "build" in s}
        start = time.monotonic()
        self.compose("build", *sorted(one_each.values()), timeout=timeout)
        self.timed("build", start)

    def up(self, *args: str, timeout: float) -> None:
        start = time.monotonic()
        self.compose("up", "-d", *args, timeout=timeout)
        self.timed(" ".join(("up", *args)), start)

    def down(self, timeout: float) -> None:
        start = time.monotonic()
        self.compose("down", "--timeout", "5", timeout=timeout)
        self.timed("down", start)

    def exec(self, service: str, *argv: str, index: int = 1, timeout: float = 60) -> str:
        """Run `argv` in a container of `service`; its stdout (a failure raises)."""
        return self.compose(
            "exec", "-T", "--index", str(index), service, *argv, timeout=timeout
        ).stdout

    def containers(self, service: str | None = None, *, every: bool = False) -> list[str]:
        """IDs of the project's containers (running ones unless `every`), by compose label."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return docker("ps", "-q", "--no-trunc", *(["-a"] if every else []), *filters).split()

    def inspect(self, container: str) -> dict:
        return json.loads(docker("inspect", container))[0]

    def mesh_ip(self, container: str) -> str:
        networks = self.inspect(container)["NetworkSettings"]["Networks"]
        return str(networks[f"{self.project}_mesh"]["IPAddress"])

    def envoy_admin(self, sidecar: str, path: str) -> str:
        """GET `path` from the Envoy admin of a sidecar (127.0.0.1:9901 in its network)."""
        script = (
            "import sys, urllib.request; "
            "sys.stdout.write(urllib.request.urlopen("
            f"'http://127.0.0.1:9901{path}', timeout=5).read().decode())"
        )
        return self.exec(sidecar, "python3", "-c", script)

    def ping(self) -> str:
        """`redis-cli -p 10000 PING` in the backend container: through both Envoys."""
        done = self.compose(
            "exec", "-T", "backend", "redis-cli", "-p", "10000", "PING", check=False, timeout=30
        )
        return (done.stdout + done.stderr).strip()

    def logs(self) -> str:
        """Every container's logs (stopped and killed ones too), and what `ps` says of each."""
        parts = []
        for cid in self.containers(every=True):
            info = self.inspect(cid)
            state = info["State"]
            header = (
                f"===== {info['Name'].lstrip('/')} ({state['Status']}, exit {state['ExitCode']}"
                f"{', ' + state['Health']['Status'] if state.get('Health') else ''}) ====="
            )
            logs = subprocess.run(
                ["docker", "logs", "--timestamps", cid],
                capture_output=True,
                text=True,
                timeout=60,
            )
            parts.append(header + "\n" + logs.stdout + logs.stderr)
        return "\n".join(parts) or "(no containers)"

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": docker("ps", "-aq", "--filter", label).split(),
            "volumes": docker("volume", "ls", "-q", "--filter", label).split(),
            "networks": docker("network", "ls", "-q", "--filter", label).split(),
        }

    def remove(self) -> None:
        """`down -v`, then anything the project still holds, then the images a rebuild left
        dangling (only those the Dockerfile labels)."""
        start = time.monotonic()
        try:
            self.compose("down", "-v", "--remove-orphans", "--timeout", "5", timeout=900)
        finally:
            left = self.leftovers()
            if left["containers"]:
                docker("rm", "-f", "-v", *left["containers"], check=False, timeout=900)
            # the engine may still be deleting a container's files: its volumes wait for it
            deadline = time.monotonic() + 900
            while self.leftovers()["containers"] and time.monotonic() < deadline:
                time.sleep(2)
            left = self.leftovers()
            if left["volumes"]:
                docker("volume", "rm", "-f", *left["volumes"], check=False)
            if left["networks"]:
                docker("network", "rm", *left["networks"], check=False)
            docker(
                "image", "prune", "-f", "--filter", f"label={BUILD_LABEL}", check=False, timeout=900
            )
            self.timed("down -v and clean-up", start)
            left = self.leftovers()
            if any(left.values()):
                raise ComposeError(f"{self.project} left {left} behind")
