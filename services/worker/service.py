"""The `kuma_worker` nameko service: certificate signing RPC, start-up defaults, periodic
housekeeping. A thin shell: every job is a plain function of `housekeeping.py`, `signing.py` or
`kuma/heartbeat.py`.

Run it with the console entry point (reads the kuma-cp config: `-c FILE`, KUMA_* env vars):

    kuma-worker [-c kuma-cp.yaml]

or with nameko itself (AMQP URI from KUMA_WORKER_AMQP_URI through nameko's YAML env
substitution; the kuma-cp config from KUMA_CONFIG_FILE and KUMA_* env vars):

    nameko run --config services/worker/nameko.yaml services.worker.service:KumaWorker

Entrypoints:
- RPC `sign(mesh, service, csr_pem, ttl_seconds=None, proof=...) -> {"result": PEM chain, "mac"}`,
  `mesh_ca(mesh, proof=...) -> {"result": PEM bundle, "mac"}`: only for callers proving with the
  worker key that they are replicas of this control plane (kuma/edge/worker_client.py, "Who may
  ask"); a call without a valid proof gets a WorkerAuthError and is logged;
  `ping() -> {...}` (health; also checks the store; no proof);
- timers: liveness sweep (`worker.sweepInterval`, KUMA_WORKER_SWEEP_INTERVAL), insight clean-up
  (`worker.insightCleanupInterval`, KUMA_WORKER_INSIGHT_CLEANUP_INTERVAL), health file touch
  (`worker.healthInterval`, KUMA_WORKER_HEALTH_INTERVAL).
Timer intervals are read when this module is imported (nameko's timers are declared on the
class), from the config file KUMA_CONFIG_FILE names (`kuma-worker -c` sets it) and KUMA_* env.
"""

from __future__ import annotations

import os

# psycopg's C wait function blocks eventlet's hub; its select()-based one is green once
# eventlet has patched `select`. Must be set before psycopg is imported.
os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

import logging  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from nameko.extensions import DependencyProvider  # noqa: E402
from nameko.rpc import rpc  # noqa: E402
from nameko.timer import timer  # noqa: E402

from kuma.config import KumaCpConfig, autoconfigure, load_config  # noqa: E402
from kuma.edge.worker_client import (  # noqa: E402
    SERVICE_NAME,
    ProofVerifier,
    Verified,
    WorkerAuthError,
    worker_key,
)
from kuma.errors import KumaError  # noqa: E402
from kuma.wiring import Core, open_core  # noqa: E402
from services.worker.health_file import health_file, private_health_file  # noqa: E402
from services.worker.housekeeping import Housekeeping, ensure_defaults  # noqa: E402
from services.worker.signing import Signer  # noqa: E402

log = logging.getLogger("kuma.worker")


class _ExpectedErrorsWithoutTraceback(logging.Filter):
    """nameko logs every expected error (a bad CSR, an unknown mesh) with its traceback: keep
    the one-line warning, drop the traceback. Unexpected errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("(expected)"):
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("nameko.containers").addFilter(_ExpectedErrorsWithoutTraceback())
CONFIG_FILE_KEY = "KUMA_CONFIG_FILE"
SETTINGS = load_config(os.environ.get(CONFIG_FILE_KEY) or None).worker


@dataclass
class Runtime:
    cfg: KumaCpConfig
    core: Core
    housekeeping: Housekeeping
    signer: Signer
    verifier: ProofVerifier
    instance_id: str
    health_file: Path | None


class KumaRuntime(DependencyProvider):  # type: ignore[misc]
    """Opens the store (and change feed) once per worker process, creates the start-up
    defaults, and hands the same `Runtime` to every entrypoint call."""

    runtime: Runtime | None = None

    def setup(self) -> None:
        config_file = self.container.config.get(CONFIG_FILE_KEY) or os.environ.get(CONFIG_FILE_KEY)
        cfg = autoconfigure(load_config(config_file or None))
        health = private_health_file(health_file(cfg.worker))
        core = open_core(cfg, name="kuma-worker")
        try:
            defaults = ensure_defaults(cfg, core)
            verifier = ProofVerifier(lambda: worker_key(core.store))
        except Exception:
            core.close()
            raise
        log.info(
            "start-up defaults ready (Mesh %r %s)",
            "default",
            "created" if defaults.mesh_created else "already there",
        )
        self.runtime = Runtime(
            cfg=cfg,
            core=core,
            housekeeping=Housekeeping(cfg, core),
            signer=Signer(core.store, cfg.sds_server.certificate_lifetime.total_seconds()),
            verifier=verifier,
            instance_id=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            health_file=health,
        )

    def start(self) -> None:
        self._touch()

    def _touch(self) -> None:
        runtime = self.runtime
        if runtime is not None and runtime.health_file is not None:
            runtime.health_file.touch(mode=0o600)

    def stop(self) -> None:
        self._close()

    def kill(self) -> None:
        self._close()

    def _close(self) -> None:
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            if runtime.health_file is not None:
                runtime.health_file.unlink(missing_ok=True)
            runtime.core.close()

    def get_dependency(self, worker_ctx: Any) -> Runtime:
        assert self.runtime is not None, "the worker is stopping"
        return self.runtime


class KumaWorker:
    name = SERVICE_NAME
    kuma: Runtime = KumaRuntime()  # type: ignore[assignment]

    @rpc(expected_exceptions=KumaError)  # type: ignore[misc]
    def sign(
        self,
        mesh: str,
        service: str,
        csr_pem: str,
        ttl_seconds: float | None = None,
        proof: Any = None,
    ) -> dict[str, Any]:
        """The workload certificate chain (PEM, leaf first) for a CSR of
        `spiffe://{mesh}/{service}`, valid `ttl_seconds` (default and cap:
        sdsServer.certificateLifetime), for a caller with a valid proof."""
        call = self._verified("sign", [mesh, service, csr_pem, ttl_seconds], proof)
        return call.reply(self.kuma.signer.sign(mesh, service, csr_pem, ttl_seconds))

    @rpc(expected_exceptions=KumaError)  # type: ignore[misc]
    def mesh_ca(self, mesh: str, proof: Any = None) -> dict[str, Any]:
        """The trust bundle (PEM) of `mesh`, for a caller with a valid proof."""
        call = self._verified("mesh_ca", [mesh], proof)
        return call.reply(self.kuma.signer.mesh_ca(mesh))

    def _verified(self, method: str, args: list[Any], proof: Any) -> Verified:
        try:
            return self.kuma.verifier.verify(method, args, proof)
        except WorkerAuthError as exc:
            log.warning(
                "refused %s call for mesh %r%s: %s",
                method,
                args[0] if args else None,
                f", service {args[1]!r}" if len(args) > 1 else "",
                exc,
            )
            raise

    @rpc(expected_exceptions=KumaError)  # type: ignore[misc]
    def ping(self) -> dict[str, Any]:
        started = time.monotonic()
        self.kuma.core.store.ping()
        return {
            "service": SERVICE_NAME,
            "instance": self.kuma.instance_id,
            "storeMs": round((time.monotonic() - started) * 1000, 2),
        }

    @timer(interval=SETTINGS.sweep_interval.total_seconds())  # type: ignore[misc]
    def sweep(self) -> None:
        self.kuma.housekeeping.run_sweep()

    @timer(interval=SETTINGS.insight_cleanup_interval.total_seconds())  # type: ignore[misc]
    def cleanup_insights(self) -> None:
        self.kuma.housekeeping.run_cleanup()

    @timer(interval=SETTINGS.health_interval.total_seconds())  # type: ignore[misc]
    def touch_health_file(self) -> None:
        """Touch the health file while the store answers; compose checks its age."""
        health = self.kuma.health_file
        try:
            self.kuma.core.store.ping()
        except KumaError as exc:
            log.warning("health: store unavailable: %s", exc)
            return
        if health is not None:
            health.touch(mode=0o600)
