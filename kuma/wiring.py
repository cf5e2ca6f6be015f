"""Building the shared collaborators from config: every service's composition root calls these
instead of opening its own connections (DESIGN §6)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import yaml

from kuma.config import KumaCpConfig, postgres_conninfo
from kuma.errors import ConfigError, KumaError
from kuma.events import ChangeFeed, InProcessFeed, PublishingStore, RedisFeed, WatchedFeed
from kuma.manager import ResourceManager, ensure_mesh
from kuma.resources import mesh as mesh_rules
from kuma.resources.registry import MESH, decode_spec
from kuma.store import MemoryStore, ResourceStore
from kuma.store.metered import MeteredStore

log = logging.getLogger(__name__)
DEFAULT_MESH = "default"


def open_store(cfg: KumaCpConfig) -> ResourceStore:
    """The configured store, metered (`kuma/store/metered.py`: Kuma's `store` metrics)."""
    return MeteredStore(_open_raw_store(cfg))


def _open_raw_store(cfg: KumaCpConfig) -> ResourceStore:
    """Postgres is migrated first when `store.migrateOnStart` is set."""
    if cfg.store.type == "memory":
        return MemoryStore()
    if cfg.store.type == "postgres":
        from kuma.store import PostgresStore, migrate

        pg = cfg.store.postgres
        conninfo = postgres_conninfo(pg)
        if cfg.store.migrate_on_start:
            applied = migrate.migrate(conninfo)
            if applied:
                log.info("applied store migrations: %s", ", ".join(applied))
        return PostgresStore(
            conninfo,
            min_size=pg.min_open_connections,
            max_size=pg.max_open_connections,
            timeout=float(pg.connection_timeout),
        )
    raise ConfigError(f"store type {cfg.store.type!r} is not supported by this process")


def open_feed(cfg: KumaCpConfig, store: ResourceStore, name: str = "kuma") -> ChangeFeed:
    """The change feed, watched by the revision poll so that a lost message is never lost."""
    feed_cfg = cfg.change_feed
    inner: ChangeFeed
    if feed_cfg.type == "redis":
        inner = RedisFeed(
            feed_cfg.redis.url,
            feed_cfg.redis.channel,
            client_name=f"{name}-{uuid.uuid4().hex[:8]}",
        )
    else:
        inner = InProcessFeed()
    return WatchedFeed(inner, store.revision, feed_cfg.revision_poll_interval.total_seconds())


@dataclass
class Core:
    """What every service shares: the publishing store, the change feed and the manager."""

    store: ResourceStore
    feed: ChangeFeed
    manager: ResourceManager

    def close(self) -> None:
        self.feed.close()
        self.store.close()


def open_core(cfg: KumaCpConfig, name: str = "kuma") -> Core:
    raw = open_store(cfg)
    try:
        feed = open_feed(cfg, raw, name)
    except Exception:
        raw.close()
        raise
    store = PublishingStore(raw, feed)
    return Core(store=store, feed=feed, manager=ResourceManager(store))


def default_mesh_spec(cfg: KumaCpConfig) -> mesh_rules.MeshSpec:
    """`defaults.mesh` (YAML text, `type`/`name` keys ignored) as a Mesh spec."""
    data = yaml.safe_load(cfg.defaults.mesh) or {}
    if not isinstance(data, dict):
        raise ConfigError("Invalid configuration: defaults.mesh: must be a YAML mapping")
    data = {k: v for k, v in data.items() if k not in ("type", "name")}
    try:
        return decode_spec(MESH, data)
    except KumaError as exc:
        raise ConfigError(f"Invalid configuration: defaults.mesh: {exc}") from None


def ensure_default_mesh(cfg: KumaCpConfig, manager: ResourceManager) -> bool:
    """Create Mesh `default` when missing (spec §2.5); safe when several processes race."""
    created = ensure_mesh(manager, DEFAULT_MESH, default_mesh_spec(cfg))
    if created:
        log.info("created Mesh %r", DEFAULT_MESH)
    return created
