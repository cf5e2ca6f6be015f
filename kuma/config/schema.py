"""kuma-cp's settings schema: the sections of spec §2.3 in its order, plus this design's store
pool, changeFeed, worker and apiServer additions. A new setting is one line here: loading, env
overrides, `to_json`, `ENV_VARS` and kuma-cp.defaults.yaml follow from it (`engine.py`); its rules
are in `checks.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from kuma.config.engine import env_vars, option, section


@dataclass(frozen=True, slots=True)
class KubernetesStoreConfig:
    system_namespace: str = option("kuma-system")


@dataclass(frozen=True, slots=True)
class PostgresTLSConfig:
    mode: str = option("disable")  # disable | verifyNone | verifyCa | verifyFull
    cert_path: str = option("")
    key_path: str = option("")
    ca_path: str = option("")


@dataclass(frozen=True, slots=True)
class PostgresStoreConfig:
    host: str = option("127.0.0.1")
    port: int = option(15432)
    user: str = option("kuma")
    password: str = option("kuma", secret="value")
    db_name: str = option("kuma")
    connection_timeout: int = option(5)  # seconds
    tls: PostgresTLSConfig = section(PostgresTLSConfig)
    max_open_connections: int = option(10)  # per-process pool bounds
    min_open_connections: int = option(1)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    type: str = option("memory")  # memory | postgres | kubernetes
    kubernetes: KubernetesStoreConfig = section(KubernetesStoreConfig)
    postgres: PostgresStoreConfig = section(PostgresStoreConfig)
    migrate_on_start: bool = option(False)


@dataclass(frozen=True, slots=True)
class BootstrapParamsConfig:
    admin_address: str = option("127.0.0.1")
    admin_port: int = option(0, unsigned=True)
    admin_access_log_path: str = option("/dev/null")
    xds_host: str = option("")  # "" -> general.advertisedHostname (autoconfigure)
    xds_port: int = option(0, unsigned=True)  # 0 -> xdsServer.grpcPort (autoconfigure)
    xds_connect_timeout: timedelta = option(timedelta(seconds=1))


@dataclass(frozen=True, slots=True)
class BootstrapServerConfig:
    port: int = option(5682, unsigned=True)
    params: BootstrapParamsConfig = section(BootstrapParamsConfig)
    # kuma-bootstrap under gunicorn: a bootstrap is asked once per Envoy start, so it is light.
    # Worker processes (0: one per CPU) and threads per worker; the env vars are the names
    # these knobs had before they were config keys.
    workers: int = option(2, env="KUMA_BOOTSTRAP_WORKERS", unsigned=True)
    threads: int = option(4, env="KUMA_BOOTSTRAP_THREADS", unsigned=True)


@dataclass(frozen=True, slots=True)
class SdsServerConfig:
    grpc_port: int = option(5677)
    tls_cert_file: str = option("")
    tls_key_file: str = option("")
    # workload (identity) certificates: how long each is valid, and at what percentage of that
    # lifetime the xDS process pushes its successor on the open stream
    certificate_lifetime: timedelta = option(timedelta(hours=24))
    certificate_rotation_percent: int = option(80, unsigned=True)


@dataclass(frozen=True, slots=True)
class LocalServerConfig:
    """`local` of both the admin server and its deprecated predecessor."""

    port: int = option(5679, unsigned=True)


@dataclass(frozen=True, slots=True)
class PublicServerConfig:
    """`public` of both the admin server and its deprecated predecessor."""

    enabled: bool = option(False)
    port: int = option(0, unsigned=True)  # 0 -> local.port (autoconfigure)
    interface: str = option("")
    tls_cert_file: str = option("")
    tls_key_file: str = option("")
    client_certs_dir: str = option("")


@dataclass(frozen=True, slots=True)
class DataplaneTokenServerConfig:
    """Deprecated 0.3.0 name of the admin server; copied into it when changed (spec §2.4)."""

    enabled: bool = option(True)
    local: LocalServerConfig = section(LocalServerConfig)
    public: PublicServerConfig = section(PublicServerConfig)


@dataclass(frozen=True, slots=True)
class MonitoringAssignmentServerConfig:
    grpc_port: int = option(5676, unsigned=True)
    assignment_refresh_interval: timedelta = option(timedelta(seconds=1))


@dataclass(frozen=True, slots=True)
class DataplaneTokenApiConfig:
    enabled: bool = option(True)
    # lifetime of a token issued without `validFor` (POST /tokens, kumactl --valid-for);
    # 0: no expiry (Kuma 0.3's tokens), not recommended
    default_valid_for: timedelta = option(timedelta(days=365))


@dataclass(frozen=True, slots=True)
class AdminServerApisConfig:
    dataplane_token: DataplaneTokenApiConfig = section(DataplaneTokenApiConfig)


@dataclass(frozen=True, slots=True)
class AdminServerConfig:
    local: LocalServerConfig = section(LocalServerConfig)
    public: PublicServerConfig = section(PublicServerConfig)
    apis: AdminServerApisConfig = section(AdminServerApisConfig)


@dataclass(frozen=True, slots=True)
class XdsServerConfig:
    grpc_port: int = option(5678)
    diagnostics_port: int = option(5680)
    dataplane_configuration_refresh_interval: timedelta = option(timedelta(seconds=1))
    dataplane_status_flush_interval: timedelta = option(timedelta(seconds=1))
    address: str = option("0.0.0.0")  # several replicas on one host bind 127.0.0.x each
    # ADS (5678) speaks TLS with the control plane's certificate (general.tlsCertFile)
    tls_enabled: bool = option(True)
    # Bounds on what one client can make this process hold (docs/security.md): streams per
    # process (ADS and SDS together), requests buffered per stream before the server stops
    # reading it, resource names per request and per subscription, bytes per message, and how
    # long a new stream may wait before its first request.
    max_streams: int = option(10_000, unsigned=True)
    stream_queue_size: int = option(8, unsigned=True)
    max_resource_names_per_request: int = option(10_000, unsigned=True)
    max_resource_names_per_subscription: int = option(10_000, unsigned=True)
    max_message_bytes: int = option(4 * 1024 * 1024, unsigned=True)
    first_request_timeout: timedelta = option(timedelta(seconds=30))


@dataclass(frozen=True, slots=True)
class ApiServerConfig:
    port: int = option(5681)
    read_only: bool = option(False)
    # Origins (regexps of the whole Origin) a browser page may use the API from: the GUI's own
    # on this host. Kuma's default `.*` let every page read and write (docs/compat.md).
    cors_allowed_domains: tuple[str, ...] = option(
        (r"http://localhost:5683", r"http://127\.0\.0\.1:5683", r"http://\[::1\]:5683")
    )
    address: str = option("0.0.0.0")
    admin_token: str = option("", secret="value")  # "" -> generated at first start
    admin_token_file: str = option("")  # operator's token file, read only (kuma/admin_token.py)
    # kuma-api under gunicorn: worker processes (0: one per CPU) and threads per worker
    workers: int = option(0, env="KUMA_API_WORKERS", unsigned=True)
    threads: int = option(8, env="KUMA_API_THREADS", unsigned=True)


@dataclass(frozen=True, slots=True)
class AdmissionServerConfig:
    address: str = option("", env="KUMA_KUBERNETES_ADMISSION_SERVER_ADDRESS")
    port: int = option(5443, env="KUMA_KUBERNETES_ADMISSION_SERVER_PORT", unsigned=True)
    cert_dir: str = option("", env="KUMA_KUBERNETES_ADMISSION_SERVER_CERT_DIR")


@dataclass(frozen=True, slots=True)
class KubernetesRuntimeConfig:
    admission_server: AdmissionServerConfig = section(AdmissionServerConfig)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    kubernetes: KubernetesRuntimeConfig = section(KubernetesRuntimeConfig)


DEFAULT_MESH_YAML = "type: Mesh\nname: default\nmtls:\n  ca: {}\n  enabled: false\n"


@dataclass(frozen=True, slots=True)
class DefaultsConfig:
    mesh: str = option(DEFAULT_MESH_YAML, yaml_text=True)


@dataclass(frozen=True, slots=True)
class ReportsConfig:
    enabled: bool = option(True)


@dataclass(frozen=True, slots=True)
class GeneralConfig:
    advertised_hostname: str = option("localhost")
    # Callers on this host (loopback) are trusted like an operator: API writes need no admin
    # token and a dataplane may bootstrap without a dataplane token. Presented tokens are
    # always checked. Turn off where untrusted workloads share the control plane's host.
    trust_loopback: bool = option(True)
    # More names of this host that a same-host request's Host header may use (localhost, the
    # loopback addresses, advertisedHostname, tlsServerNames and the machine's name always may).
    local_hostnames: tuple[str, ...] = option(())
    # The control plane's own TLS certificate and key (PEM) for xDS (5678), SDS (5677) and
    # bootstrap (5682). Empty: one is generated at first start and stored, shared by every
    # replica, for localhost, the loopback addresses, advertisedHostname and tlsServerNames.
    tls_cert_file: str = option("")
    tls_key_file: str = option("")
    tls_server_names: tuple[str, ...] = option(())


@dataclass(frozen=True, slots=True)
class GuiServerConfig:
    port: int = option(5683, unsigned=True)
    api_server_url: str = option("")  # always set by autoconfigure
    # kuma-gui under gunicorn: pages poll (no open streams), so a few threads serve many viewers
    workers: int = option(1, env="KUMA_GUI_WORKERS", unsigned=True)  # 0: one per CPU
    threads: int = option(8, env="KUMA_GUI_THREADS", unsigned=True)


@dataclass(frozen=True, slots=True)
class RedisChangeFeedConfig:
    url: str = option("redis://127.0.0.1:6379/0", secret="url")
    channel: str = option("kuma:changes")


@dataclass(frozen=True, slots=True)
class ChangeFeedConfig:
    type: str = option("memory")  # memory | redis
    redis: RedisChangeFeedConfig = section(RedisChangeFeedConfig)
    # the safety net for lost pub/sub messages: how often the store revision is polled
    revision_poll_interval: timedelta = option(timedelta(seconds=5))
    # how long dirty meshes are coalesced before one rebuild
    debounce: timedelta = option(timedelta(milliseconds=50))


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    amqp_uri: str = option("amqp://guest:guest@127.0.0.1:5672/", secret="url")
    # kuma-worker serves `/metrics` on this port, all interfaces (0: not at all)
    metrics_port: int = option(0)
    # Housekeeping (kuma-worker, and kuma-cp run's in-process jobs). With the defaults a replica
    # killed outright is seen Offline within two sweep intervals (timeout plus at most one
    # interval). The heartbeat timeout's default is kuma.heartbeat.DEFAULT_TIMEOUT.
    sweep_interval: timedelta = option(timedelta(seconds=10))
    heartbeat_timeout: timedelta = option(timedelta(seconds=10))  # silent this long: dead
    insight_cleanup_interval: timedelta = option(timedelta(minutes=1))
    insight_keep_closed: int = option(5, unsigned=True)  # closed subscriptions kept per Dataplane
    # The file kuma-worker touches while healthy, in a private directory (services/worker/
    # health_file.py); "": $XDG_RUNTIME_DIR/kuma-worker/health, else ~/.cache/kuma-worker/health.
    health_file: str = option("")
    health_interval: timedelta = option(timedelta(seconds=5))


@dataclass(frozen=True, slots=True)
class KumaCpConfig:
    environment: str = option("universal")  # universal | kubernetes
    store: StoreConfig = section(StoreConfig)
    bootstrap_server: BootstrapServerConfig = section(BootstrapServerConfig)
    sds_server: SdsServerConfig = section(SdsServerConfig)
    dataplane_token_server: DataplaneTokenServerConfig = section(DataplaneTokenServerConfig)
    monitoring_assignment_server: MonitoringAssignmentServerConfig = section(
        MonitoringAssignmentServerConfig
    )
    admin_server: AdminServerConfig = section(AdminServerConfig)
    xds_server: XdsServerConfig = section(XdsServerConfig)
    api_server: ApiServerConfig = section(ApiServerConfig)
    runtime: RuntimeConfig = section(RuntimeConfig)
    defaults: DefaultsConfig = section(DefaultsConfig)
    reports: ReportsConfig = section(ReportsConfig)
    general: GeneralConfig = section(GeneralConfig)
    gui_server: GuiServerConfig = section(GuiServerConfig)
    change_feed: ChangeFeedConfig = section(ChangeFeedConfig)
    worker: WorkerConfig = section(WorkerConfig)


ENV_VARS: Mapping[str, str] = env_vars(KumaCpConfig)
"""Every env var kuma-cp reads -> the YAML key path it sets."""
