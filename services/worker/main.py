"""`kuma-worker`: run the `kuma_worker` nameko service, or check its health.

    kuma-worker [-c FILE] [--log-level off|info|debug] run the worker (eventlet, nameko)
    kuma-worker --health [-c FILE] [--timeout 5]     RPC ping through RabbitMQ: exit 0 when a
                                                     worker answered and its store is reachable
    kuma-worker --health-file [-c FILE] [--max-age 30]  exit 0 when this host's health file
                                                     (`worker.healthFile`) was touched recently
                                                     (no broker needed)

The AMQP URI is `worker.amqpUri` (KUMA_WORKER_AMQP_URI); with `worker.metricsPort`
(KUMA_WORKER_METRICS_PORT, default 0: off) the worker serves its Prometheus metrics at
`http://<host>:<port>/metrics`. The housekeeping intervals and the health file are the other
`worker.*` keys (KUMA_WORKER_SWEEP_INTERVAL, ...: kuma-cp.defaults.yaml lists them all). The
store and change feed are configured
like every kuma service (-c FILE, KUMA_* env vars). eventlet is imported and monkey-patches only
on the run path, before psycopg, redis or kombu are imported.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from kuma.edge.clitools import CONTEXT, log_level_option


def _load(config_file: str | None):  # type: ignore[no-untyped-def]
    from kuma import config as kconfig

    try:
        return kconfig.autoconfigure(kconfig.load_config(config_file))
    except kconfig.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _health_rpc(config_file: str | None, timeout: float) -> None:
    from kuma.edge.worker_client import WorkerRpcClient
    from kuma.errors import KumaError

    cfg = _load(config_file)
    client = WorkerRpcClient(cfg.worker.amqp_uri, timeout=timeout)
    try:
        answer = client.ping(timeout=timeout)
    except KumaError as exc:
        click.echo(f"unhealthy: {exc}", err=True)
        sys.exit(1)
    finally:
        client.close()
    click.echo(json.dumps(answer))


def _health_file(config_file: str | None, max_age: float) -> None:
    from services.worker.health_file import health_file

    path = Path(health_file(_load(config_file).worker))
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        click.echo(f"unhealthy: {path} does not exist (worker not started or stopped)", err=True)
        sys.exit(1)
    if age > max_age:
        click.echo(f"unhealthy: {path} last touched {age:.0f}s ago", err=True)
        sys.exit(1)
    click.echo(f"healthy: {path} touched {age:.1f}s ago")


def _serve_metrics(port: int) -> None:
    """`/metrics` (any path) on every interface, from eventlet's own server in a green thread
    (prometheus-client's server blocks in a selector eventlet does not patch)."""
    import eventlet
    import eventlet.wsgi
    from prometheus_client import make_wsgi_app

    listener = eventlet.listen(("0.0.0.0", port))
    eventlet.spawn(eventlet.wsgi.server, listener, make_wsgi_app(), log_output=False)


def _run(config_file: str | None) -> None:
    import warnings

    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    try:
        import eventlet
    except ImportError:
        raise click.ClickException(
            "the worker needs nameko and eventlet: pip install 'kuma-py[worker]'"
        ) from None

    eventlet.monkey_patch()
    cfg = _load(config_file)
    from nameko.cli.run import run

    from kuma.errors import ConfigError
    from services.worker.health_file import health_file, private_health_file

    if config_file:  # the service module reads its timer intervals from this file
        os.environ["KUMA_CONFIG_FILE"] = config_file
    from services.worker.service import CONFIG_FILE_KEY, KumaWorker

    try:  # before nameko starts: a clear message rather than a failed container
        private_health_file(health_file(cfg.worker))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    if cfg.worker.metrics_port:
        _serve_metrics(cfg.worker.metrics_port)
    config = {"AMQP_URI": cfg.worker.amqp_uri, CONFIG_FILE_KEY: config_file or ""}
    run([KumaWorker], config)


@click.command(context_settings=CONTEXT)
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
@log_level_option("info")
@click.option("--health", is_flag=True, help="ping a worker over RPC and exit 0 if it answers")
@click.option("--health-file", is_flag=True, help="check this host's health file and exit")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="--health timeout")
@click.option(
    "--max-age", type=float, default=30.0, show_default=True, help="--health-file age limit (s)"
)
def main(
    config_file: str | None,
    health: bool,
    health_file: bool,
    timeout: float,
    max_age: float,
) -> None:
    """Run the kuma worker (certificate signing RPC, start-up defaults, housekeeping)."""
    if config_file is None:
        config_file = os.environ.get("KUMA_CONFIG_FILE") or None
    if health:
        _health_rpc(config_file, timeout)
    elif health_file:
        _health_file(config_file, max_age)
    else:
        _run(config_file)


if __name__ == "__main__":
    main()
