"""kuma-cp: the control plane's command line (spec §2.1). `kuma-cp run` is the all-in-one:
every service in one process on the configured store (memory by default)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from kuma import config as kconfig
from kuma.edge.clitools import CONTEXT, log_level_option, persist_log_level, version_command
from kuma.errors import ConfigError, KumaError
from services.cp.components import build_components

log = logging.getLogger("kuma-cp")


def _load(config_file: str | None) -> kconfig.KumaCpConfig:
    try:
        return kconfig.load_config(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@click.group(context_settings=CONTEXT, invoke_without_command=True)
@log_level_option("info")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Universal Control Plane for Envoy-based Service Mesh."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command()
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
def run(config_file: str | None) -> None:
    """Launch the Control Plane: every service in this one process."""
    cfg = _load(config_file)
    # Logged before autoconfiguration, as Kuma does (spec §16.13); passwords masked.
    log.info("Current config %s", json.dumps(kconfig.to_json(cfg), sort_keys=True))
    cfg = kconfig.autoconfigure(cfg)
    with _stop_on_signals() as stop:
        try:
            components = build_components(cfg)
        except KumaError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            for component in components:
                component.start()
                log.info("started %s", component.name)
            stop.wait()
        finally:
            for component in reversed(components):
                component.stop()
                log.info("stopped %s", component.name)
    log.info("stopped Control Plane")


@cli.group(invoke_without_command=True)
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
@click.pass_context
def migrate(ctx: click.Context, config_file: str | None) -> None:
    """Apply the Postgres store's schema migrations (`kuma-cp migrate [up]`)."""
    ctx.obj = config_file
    if ctx.invoked_subcommand is None:
        _migrate(config_file)


@migrate.command(name="up")
@click.pass_obj
def migrate_up(config_file: str | None) -> None:
    """Apply every pending migration."""
    _migrate(config_file)


def _migrate(config_file: str | None) -> None:
    from kuma.store import migrate as migrations

    cfg = _load(config_file)
    if cfg.store.type != "postgres":
        raise click.ClickException(
            f'migrations apply to the postgres store only (store.type is "{cfg.store.type}")'
        )
    try:
        applied = migrations.migrate(kconfig.postgres_conninfo(cfg.store.postgres))
    except KumaError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("applied: " + ", ".join(applied) if applied else "the schema is up to date")


_T = TypeVar("_T")


def _read_stored(
    cfg: kconfig.KumaCpConfig, read: Callable[[Any], _T | None], what: str, instead: str, made: str
) -> _T:
    """What the control plane generated and stored (Postgres store only), or a usage error."""
    if cfg.store.type != "postgres":
        raise click.ClickException(
            f"the memory store lives inside the running kuma-cp, so its generated {what} "
            f"cannot be read from here: {instead}"
        )
    with _postgres(cfg) as store:
        found = read(store)
    if found is None:
        raise click.ClickException(f"no {what} has been generated yet: {made}")
    return found


@contextmanager
def _postgres(cfg: kconfig.KumaCpConfig) -> Iterator[Any]:
    """The configured Postgres store, closed afterwards; store errors become usage errors."""
    from kuma.store import PostgresStore

    pg = cfg.store.postgres
    try:
        store = PostgresStore(kconfig.postgres_conninfo(pg), timeout=float(pg.connection_timeout))
    except KumaError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield store
    except KumaError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


@cli.command(name="admin-token")
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
def admin_token(config_file: str | None) -> None:
    """Print the admin token that API writes (PUT/DELETE) from other hosts need."""
    from kuma.admin_token import configured_token, stored_token

    cfg = _load(config_file)
    try:
        chosen = configured_token(cfg)  # apiServer.adminToken, else adminTokenFile
    except KumaError as exc:
        raise click.ClickException(str(exc)) from None
    if chosen:
        click.echo(chosen)
        return
    token = _read_stored(
        cfg,
        stored_token,
        "admin token",
        "set apiServer.adminToken (KUMA_API_SERVER_ADMIN_TOKEN) to choose the token, or write "
        "from the same host (no token needed)",
        "it is created when the API first starts",
    )
    click.echo(token)


@cli.command(name="tls-cert")
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
def tls_cert(config_file: str | None) -> None:
    """Print the certificate xDS (5678, 5677) and bootstrap (5682) present, for kuma-dp's
    --ca-cert-file. (With general.tlsCertFile, give kuma-dp the CA that signed it instead.)"""
    from kuma import server_tls

    cfg = _load(config_file)
    if cfg.general.tls_cert_file:
        click.echo(Path(cfg.general.tls_cert_file).read_text(), nl=False)
        return
    pair = _read_stored(
        cfg,
        server_tls.stored,
        "certificate",
        "give your own with general.tlsCertFile/tlsKeyFile (KUMA_GENERAL_TLS_CERT_FILE, "
        "KUMA_GENERAL_TLS_KEY_FILE)",
        "the first xDS or bootstrap service to start makes it",
    )
    click.echo(pair.cert_pem.decode(), nl=False)


def _token_keys_store(config_file: str | None) -> Any:
    cfg = _load(config_file)
    if cfg.store.type != "postgres":
        raise click.ClickException(
            "the memory store lives inside the running kuma-cp, so its dataplane token keys "
            "cannot be changed from here: each start of `kuma-cp run` with the memory store "
            "makes a new key (every token issued before is then refused)"
        )
    return _postgres(cfg)


def _print_keys(store: Any) -> None:
    from kuma import tokens

    record, signing = tokens.describe_keys(store)
    for entry in record.keys if record else ():
        notes = ["signing" if entry.kid == signing else ""]
        notes.append("accepts tokens without kid" if entry.accepts_tokens_without_kid else "")
        click.echo("\t".join([entry.kid, entry.created_at, ", ".join(n for n in notes if n)]))


@cli.command(name="token-keys")
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
def token_keys(config_file: str | None) -> None:
    """List the keys whose dataplane tokens are accepted (id, created, which one signs)."""
    with _token_keys_store(config_file) as store:
        _print_keys(store)


@cli.command(name="rotate-token-key")
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
def rotate_token_key(config_file: str | None) -> None:
    """Sign new dataplane tokens with a new key. Tokens of the older keys stay valid until they
    expire or `kuma-cp retire-token-key` retires those keys."""
    from kuma import tokens

    with _token_keys_store(config_file) as store:
        kid = tokens.rotate_signing_key(store)
        click.echo(f"new dataplane tokens are signed with key {kid}; the keys accepted now:")
        _print_keys(store)


@cli.command(name="retire-token-key")
@click.option("-c", "--config-file", type=click.Path(), default=None, help="configuration file")
@click.option(
    "--kid",
    "kids",
    multiple=True,
    help="the key to retire (repeatable; default: every key older than the signing key)",
)
def retire_token_key(config_file: str | None, kids: tuple[str, ...]) -> None:
    """Refuse the dataplane tokens of keys older than the signing key, from now on (within
    seconds on every replica). Renew those tokens first."""
    from kuma import tokens

    with _token_keys_store(config_file) as store:
        retired = tokens.retire_signing_keys(store, kids)
        click.echo(
            f"retired: {', '.join(retired)}" if retired else "no key older than the signing key"
        )
        _print_keys(store)


cli.add_command(version_command())
persist_log_level(cli)
