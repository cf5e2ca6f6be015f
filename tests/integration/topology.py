"""The compose topology as real processes on loopback addresses, with the fixed ports:
API 127.0.0.2:5681/5680, xDS replicas 127.0.0.3:5678 and 127.0.0.4:5678, bootstrap
127.0.0.5:5682, over the machine's Postgres (a fresh database) and Redis (a channel of this run).
Every process's output is kept; `logs()` prints them on failure; `stop()` tears all down.

For outage scenarios, `PrivateRedis` and `PrivatePostgres` are servers of one test only, on free
ports, that the test may stop and start again without disturbing anything else."""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import redis
import requests

from tests.ports import free_port
from tests.waiting import wait_until

BIN = Path(sys.executable).parent
API_HOST, XDS_HOSTS, BOOTSTRAP_HOST = "127.0.0.2", ("127.0.0.3", "127.0.0.4"), "127.0.0.5"
API = f"http://{API_HOST}:5681"
SWEEP_INTERVAL_S, HEARTBEAT_TIMEOUT_S = 6, 6
BOOTSTRAP = f"http://{BOOTSTRAP_HOST}:5682"
REDIS_SERVER = Path("/usr/bin/redis-server")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Topology:
    def __init__(
        self,
        workdir: Path,
        pg: Mapping[str, str],
        redis_channel: str,
        amqp_uri: str,
        *,
        redis_url: str | None = None,
    ):
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # More logs for `logs()`: those of servers the test runs besides ours.
        self.extra_logs: dict[str, Path] = {}
        base = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        self.env = {
            **base,
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_POSTGRES_HOST": pg["host"],
            "KUMA_STORE_POSTGRES_PORT": pg["port"],
            "KUMA_STORE_POSTGRES_USER": pg["user"],
            "KUMA_STORE_POSTGRES_PASSWORD": "unused-with-trust-auth",
            "KUMA_STORE_POSTGRES_DB_NAME": pg["dbname"],
            "KUMA_CHANGE_FEED_TYPE": "redis",
            "KUMA_CHANGE_FEED_REDIS_CHANNEL": redis_channel,
            "KUMA_CHANGE_FEED_REVISION_POLL_INTERVAL": "1s",
            # The liveness sweep, shortened but in the defaults' proportion (timeout = interval,
            # two beats of 3 s): a dead replica is noticed within two sweep intervals.
            "KUMA_WORKER_SWEEP_INTERVAL": f"{SWEEP_INTERVAL_S}s",
            "KUMA_WORKER_HEARTBEAT_TIMEOUT": f"{HEARTBEAT_TIMEOUT_S}s",
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST": ",".join(XDS_HOSTS),
            # the certificate every replica shares names the addresses sidecars dial
            "KUMA_GENERAL_TLS_SERVER_NAMES": ",".join([*XDS_HOSTS, BOOTSTRAP_HOST]),
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": "5678",
            "KUMA_WORKER_AMQP_URI": amqp_uri,
            "KUMA_WORKER_HEALTH_FILE": str(workdir / "worker.health"),
        }
        if redis_url is not None:
            self.env["KUMA_CHANGE_FEED_REDIS_URL"] = redis_url

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # gunicorn's workers go down with their master
        )
        self.procs[name] = proc
        return proc

    def start_control_plane(self) -> None:
        migrate = subprocess.run(
            [str(BIN / "kuma-cp"), "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrate.returncode == 0, migrate.stderr
        self.start(
            "api", [str(BIN / "kuma-api"), "--workers", "2"], KUMA_API_SERVER_ADDRESS=API_HOST
        )
        for i, host in enumerate(XDS_HOSTS):
            self.start(f"xds-{i + 1}", [str(BIN / "kuma-xds")], KUMA_XDS_SERVER_ADDRESS=host)
        self.start(
            "bootstrap",
            [str(BIN / "kuma-bootstrap"), "--workers", "1", "--bind", f"{BOOTSTRAP_HOST}:5682"],
        )
        self.start("worker", [str(BIN / "kuma-worker")], PYTHONWARNINGS="ignore")
        wait_until(
            lambda: requests.get(f"http://{API_HOST}:5680/ready", timeout=1).ok, 30, "API ready"
        )
        wait_until(
            lambda: (
                requests.post(f"{BOOTSTRAP}/bootstrap", data=b"x", timeout=1).status_code == 400
            ),
            30,
            "bootstrap up",
        )
        for host in XDS_HOSTS:
            wait_until(partial(_listening, host, 5678), 30, f"xDS on {host}")
            wait_until(partial(_ok, f"http://{host}:5680/ready"), 30, f"xDS diagnostics on {host}")
        wait_until((self.workdir / "worker.health").exists, 60, "the worker's health file")

    @functools.cached_property
    def ca_pem(self) -> bytes:
        """The control plane's certificate, as an operator gets it: `kuma-cp tls-cert`."""
        out = subprocess.run(
            [str(BIN / "kuma-cp"), "tls-cert"],
            env=self.env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        return out.stdout

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, sig)
        proc.wait(15)

    def stop(self) -> None:
        """SIGTERM to every process at once (each takes a second or two to drain), SIGKILL to
        any still running 10 s later."""
        running = [proc for proc in reversed(self.procs.values()) if proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def dead(self) -> dict[str, int]:
        """The processes that have exited, with their exit codes."""
        return {
            name: code for name, proc in self.procs.items() if (code := proc.poll()) is not None
        }

    def logs(self) -> str:
        files = {name: self.workdir / f"{name}.log" for name in self.procs}
        files.update(self.extra_logs)
        return "\n".join(f"--- {name}\n{_tail(path, 4000)}" for name, path in files.items())


def _tail(path: Path, size: int) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError as exc:
        return f"(no log: {exc})"


def _ok(url: str) -> bool:
    return requests.get(url, timeout=1).ok


def _listening(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def require_binary(path: Path) -> None:
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise AssertionError(f"{path} is missing or not executable: this scenario needs it")


class PrivateRedis:
    """A redis-server of one test on a free port (no persistence), that can be stopped
    (SIGTERM, waited for) and started again on the same port."""

    def __init__(self, workdir: Path):
        require_binary(REDIS_SERVER)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / "redis-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "redis-server already runs"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def pong() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
            with self.client() as c:
                return bool(c.ping())

        wait_until(pong, 15, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class PrivatePostgres:
    """A Postgres cluster of one test: `initdb` as the `postgres` OS user into a fresh directory
    (trust auth), served on a free port of 127.0.0.1 with its socket in that directory. `stop()`
    and `start()` keep the port and the data; `destroy()` stops it and removes everything."""

    DBNAME = "kuma"

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl", "postgres"):
            require_binary(PG_BIN / tool)
        require_binary(Path("/usr/sbin/runuser"))
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise AssertionError("the `postgres` OS user is missing: initdb needs it") from None
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are closed to the `postgres` user.
        self.root = Path(tempfile.mkdtemp(prefix="kuma-pg-"))
        os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.running = False

    @property
    def params(self) -> dict[str, str]:
        """libpq keywords of its database, as the `pg` argument of `Topology` wants them."""
        return {
            "host": "127.0.0.1",
            "port": str(self.port),
            "user": "postgres",
            "dbname": self.DBNAME,
        }

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            ["/usr/sbin/runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{_tail(self.log, 3000)}"
            )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{self.DBNAME}"')

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off"
        )
        data, log = str(self.data), str(self.log)
        self._run(
            "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start", timeout=90
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=90)
        self.running = False

    def destroy(self) -> None:
        try:
            if self.running or (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
