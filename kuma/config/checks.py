"""The rules a kuma-cp config must keep (spec §2.3 "Validation rules and messages"), with Kuma's
section names and messages: `validate` raises on the first broken one, as Kuma reports one
problem at a time."""

from __future__ import annotations

import ipaddress
import typing
import urllib.parse
from datetime import timedelta

import yaml

from kuma.config.schema import (
    BootstrapParamsConfig,
    BootstrapServerConfig,
    ChangeFeedConfig,
    DataplaneTokenServerConfig,
    DefaultsConfig,
    KumaCpConfig,
    LocalServerConfig,
    MonitoringAssignmentServerConfig,
    PostgresStoreConfig,
    PostgresTLSConfig,
    PublicServerConfig,
    SdsServerConfig,
    StoreConfig,
    WorkerConfig,
    XdsServerConfig,
)
from kuma.errors import ConfigError
from kuma.netutil import xds_host_problem


def _first(*rules: tuple[bool, str]) -> str | None:
    """The message of the first broken rule: Kuma reports one problem at a time."""
    return next((message for broken, message in rules if broken), None)


def _wrap(prefix: str, reason: str | None) -> str | None:
    return f"{prefix}: {reason}" if reason else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _port_range(port: int) -> tuple[bool, str]:
    return port > 65535, "Port must be in the range [0, 65535]"


def _cert_pair(cert: str, key: str) -> tuple[tuple[bool, str], tuple[bool, str]]:
    return (
        (not cert and bool(key), "TlsCertFile cannot be empty if TlsKeyFile has been set"),
        (not key and bool(cert), "TlsKeyFile cannot be empty if TlsCertFile has been set"),
    )


def _check_params(p: BootstrapParamsConfig) -> str | None:
    return _first(
        (not p.admin_address, "AdminAddress cannot be empty"),
        (not _is_ip(p.admin_address), "AdminAddress should be a valid IP address"),
        (p.admin_port > 65535, "AdminPort must be in the range [0, 65535]"),
        (not p.admin_access_log_path, "AdminAccessLogPath cannot be empty"),
        (p.xds_port > 65535, "AdminPort must be in the range [0, 65535]"),  # sic, as Kuma says
        (p.xds_connect_timeout < timedelta(0), "XdsConnectTimeout cannot be negative"),
        (bool(xds_host_problem(p.xds_host)), xds_host_problem(p.xds_host) or ""),
    )


def _check_local_public(local: LocalServerConfig, public: PublicServerConfig) -> str | None:
    on, suffix = public.enabled, "cannot be empty if server is enabled"
    public_reason = _first(
        _port_range(public.port),
        (on and not public.tls_cert_file, f"TlsCertFile {suffix}"),
        (on and not public.tls_key_file, f"TlsKeyFile {suffix}"),
        (on and not public.interface, f"Interface {suffix}"),
    )
    return _wrap("Local validation failed", _first(_port_range(local.port))) or _wrap(
        "Public validation failed", public_reason
    )


def _check_tls(t: PostgresTLSConfig) -> str | None:
    modes = ("disable", "verifyNone", "verifyCa", "verifyFull")
    return _first(
        (t.mode not in modes, f"invalid mode: {t.mode}"),
        (t.mode in ("verifyCa", "verifyFull") and not t.ca_path, "CAPath cannot be empty"),
        (bool(t.cert_path) and not t.key_path, "KeyPath cannot be empty when CertPath is provided"),
        (bool(t.key_path) and not t.cert_path, "CertPath cannot be empty when KeyPath is provided"),
    )


def _check_postgres(p: PostgresStoreConfig) -> str | None:
    return _first(
        (not p.host, "Host should not be empty"),
        (p.port < 0, "Port cannot be negative"),
        (not p.user, "User should not be empty"),
        (not p.password, "Password should not be empty"),
        (not p.db_name, "DbName should not be empty"),
        (p.connection_timeout < 0, "ConnectionTimeout cannot be negative"),
        (p.max_open_connections < 1, "MaxOpenConnections must be at least 1"),
        (p.min_open_connections < 1, "MinOpenConnections must be at least 1"),
        (
            p.min_open_connections > p.max_open_connections,
            "MinOpenConnections cannot be greater than MaxOpenConnections",
        ),
    ) or _wrap("TLS validation failed", _check_tls(p.tls))


def _check_store(s: StoreConfig) -> str | None:
    if s.type == "postgres":
        return _wrap("Postgres validation failed", _check_postgres(s.postgres))
    if s.type == "kubernetes":
        reason = _first((not s.kubernetes.system_namespace, "SystemNamespace should not be empty"))
        return _wrap("Kubernetes validation failed", reason)
    return _first((s.type != "memory", "Type should be either postgres, kubernetes or memory"))


def _check_runtime(cfg: KumaCpConfig) -> str | None:
    if cfg.environment != "kubernetes":
        return None
    server = cfg.runtime.kubernetes.admission_server
    reason = _first(_port_range(server.port), (not server.cert_dir, "CertDir should not be empty"))
    reason = _wrap("Admission Server validation failed", reason)
    return _wrap("Kubernetes validation failed", reason)


def _check_defaults(d: DefaultsConfig) -> str | None:
    try:
        mesh = yaml.safe_load(d.mesh)
    except yaml.YAMLError as exc:
        return f"Mesh is not valid YAML: {exc}"
    return _first((not isinstance(mesh, dict), "Mesh must be a YAML mapping"))


def _scheme(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).scheme
    except ValueError:  # e.g. a malformed IPv6 host
        return ""


def _check_change_feed(c: ChangeFeedConfig) -> str | None:
    reason = _first(
        (c.type not in ("memory", "redis"), "Type should be either memory or redis"),
        (c.revision_poll_interval <= timedelta(0), "RevisionPollInterval must be positive"),
        (c.debounce < timedelta(0), "Debounce cannot be negative"),
    )
    if reason or c.type != "redis":
        return reason
    redis_reason = _first(
        (
            _scheme(c.redis.url) not in ("redis", "rediss", "unix"),
            "Url must be a redis://, rediss:// or unix:// URL",
        ),
        (not c.redis.channel, "Channel should not be empty"),
    )
    return _wrap("Redis validation failed", redis_reason)


def _check_worker(w: WorkerConfig) -> str | None:
    scheme = _scheme(w.amqp_uri)
    return _first(
        (scheme not in ("amqp", "amqps"), "AmqpUri must be an amqp:// or amqps:// URI"),
        (not 0 <= w.metrics_port <= 65535, "MetricsPort must be in the range [0, 65535]"),
        (w.sweep_interval <= timedelta(0), "SweepInterval must be positive"),
        (w.heartbeat_timeout <= timedelta(0), "HeartbeatTimeout must be positive"),
        (w.insight_cleanup_interval <= timedelta(0), "InsightCleanupInterval must be positive"),
        (w.health_interval <= timedelta(0), "HealthInterval must be positive"),
    )


def _check_xds(x: XdsServerConfig) -> str | None:
    return _first(
        (x.grpc_port < 0, "GrpcPort cannot be negative"),
        (x.diagnostics_port < 0, "DiagnosticPort cannot be negative"),
        (
            x.dataplane_configuration_refresh_interval <= timedelta(0),
            "DataplaneConfigurationRefreshInterval must be positive",
        ),
        (
            x.dataplane_status_flush_interval <= timedelta(0),
            "DataplaneStatusFlushInterval must be positive",
        ),
        (x.max_streams < 1, "MaxStreams must be at least 1"),
        (x.stream_queue_size < 1, "StreamQueueSize must be at least 1"),
        (x.max_resource_names_per_request < 1, "MaxResourceNamesPerRequest must be at least 1"),
        (
            x.max_resource_names_per_subscription < 1,
            "MaxResourceNamesPerSubscription must be at least 1",
        ),
        (x.max_message_bytes < 1024, "MaxMessageBytes must be at least 1024"),
        (x.first_request_timeout <= timedelta(0), "FirstRequestTimeout must be positive"),
    )


def _threads(threads: int) -> tuple[bool, str]:
    return threads < 1, "Threads must be at least 1"


def _check_bootstrap(b: BootstrapServerConfig) -> str | None:
    reason = _first(_port_range(b.port), _threads(b.threads))
    return reason or _wrap("Params validation failed", _check_params(b.params))


def _check_sds(s: SdsServerConfig) -> str | None:
    cert_pair = _cert_pair(s.tls_cert_file, s.tls_key_file)
    return _first(
        (s.grpc_port < 0, "GrpcPort cannot be negative"),
        *cert_pair,
        (s.certificate_lifetime <= timedelta(0), "CertificateLifetime must be positive"),
        (
            not 1 <= s.certificate_rotation_percent <= 99,
            "CertificateRotationPercent must be in the range [1, 99]",
        ),
    )


def _check_token_server(d: DataplaneTokenServerConfig) -> str | None:
    disabled_but_public = not d.enabled and d.public.enabled
    return _check_local_public(d.local, d.public) or _first(
        (disabled_but_public, "Public.Enabled cannot be true when server is disabled.")
    )


def _check_mads(m: MonitoringAssignmentServerConfig) -> str | None:
    return _first(
        (m.grpc_port > 65535, ".GrpcPort must be in the range [0, 65535]"),
        (
            m.assignment_refresh_interval <= timedelta(0),
            ".AssignmentRefreshInterval must be positive",
        ),
    )


# (section title, check); "" is Kuma's one message without a section prefix. Kuma's order first.
_CHECKS: tuple[tuple[str, typing.Callable[[KumaCpConfig], str | None]], ...] = (
    ("Xds Server", lambda c: _check_xds(c.xds_server)),
    ("Bootstrap Server", lambda c: _check_bootstrap(c.bootstrap_server)),
    ("SDS Server", lambda c: _check_sds(c.sds_server)),
    ("Dataplane Token Server", lambda c: _check_token_server(c.dataplane_token_server)),
    ("Monitoring Assignment Server", lambda c: _check_mads(c.monitoring_assignment_server)),
    (
        "Admin Server",
        lambda c: (
            _check_local_public(c.admin_server.local, c.admin_server.public)
            or _first(
                (
                    c.admin_server.apis.dataplane_token.default_valid_for < timedelta(0),
                    "Apis.DataplaneToken.DefaultValidFor cannot be negative",
                )
            )
        ),
    ),
    (
        "",
        lambda c: _first(
            (
                c.environment not in ("kubernetes", "universal"),
                "Environment should be either kubernetes or universal",
            )
        ),
    ),
    ("Store", lambda c: _check_store(c.store)),
    (
        "ApiServer",
        lambda c: _first(
            (c.api_server.port < 0, "Port cannot be negative"), _threads(c.api_server.threads)
        ),
    ),
    ("Runtime", _check_runtime),
    ("Defaults", lambda c: _check_defaults(c.defaults)),
    ("GuiServer", lambda c: _first(_port_range(c.gui_server.port), _threads(c.gui_server.threads))),
    ("Change Feed", lambda c: _check_change_feed(c.change_feed)),
    ("Worker", lambda c: _check_worker(c.worker)),
    ("General", lambda c: _first(*_cert_pair(c.general.tls_cert_file, c.general.tls_key_file))),
)


def validate(cfg: KumaCpConfig) -> None:
    """Raise ConfigError `Invalid configuration: <Section> validation failed: <reason>` for the
    first broken rule (Kuma reports one problem at a time)."""
    for section, check in _CHECKS:
        reason = check(cfg)
        if reason:
            prefix = f"{section} validation failed: " if section else ""
            raise ConfigError(f"Invalid configuration: {prefix}{reason}")
