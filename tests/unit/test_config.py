"""kuma-cp configuration (spec §2.2-§2.4, §4.8): defaults, file, env, validation, derived views."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from kuma.config import (
    ENV_VARS,
    KumaCpConfig,
    autoconfigure,
    catalog,
    format_go_duration,
    load_config,
    parse_go_bool,
    parse_go_duration,
    postgres_conninfo,
    to_json,
)
from kuma.errors import ConfigError

# spec §2.3, transcribed: the whole default config as /config would show it, unmasked
SPEC_DEFAULTS = {
    "environment": "universal",
    "store": {
        "type": "memory",
        "kubernetes": {"systemNamespace": "kuma-system"},
        "postgres": {
            "host": "127.0.0.1",
            "port": 15432,
            "user": "kuma",
            "password": "kuma",
            "dbName": "kuma",
            "connectionTimeout": 5,
            "tls": {"mode": "disable", "certPath": "", "keyPath": "", "caPath": ""},
            "maxOpenConnections": 10,
            "minOpenConnections": 1,
        },
        "migrateOnStart": False,
    },
    "bootstrapServer": {
        "port": 5682,
        "params": {
            "adminAddress": "127.0.0.1",
            "adminPort": 0,
            "adminAccessLogPath": "/dev/null",
            "xdsHost": "",
            "xdsPort": 0,
            "xdsConnectTimeout": "1s",
        },
        "workers": 2,
        "threads": 4,
    },
    "sdsServer": {
        "grpcPort": 5677,
        "tlsCertFile": "",
        "tlsKeyFile": "",
        "certificateLifetime": "24h0m0s",
        "certificateRotationPercent": 80,
    },
    "dataplaneTokenServer": {
        "enabled": True,
        "local": {"port": 5679},
        "public": {
            "enabled": False,
            "port": 0,
            "interface": "",
            "tlsCertFile": "",
            "tlsKeyFile": "",
            "clientCertsDir": "",
        },
    },
    "monitoringAssignmentServer": {"grpcPort": 5676, "assignmentRefreshInterval": "1s"},
    "adminServer": {
        "local": {"port": 5679},
        "public": {
            "enabled": False,
            "port": 0,
            "interface": "",
            "tlsCertFile": "",
            "tlsKeyFile": "",
            "clientCertsDir": "",
        },
        "apis": {"dataplaneToken": {"enabled": True, "defaultValidFor": "8760h0m0s"}},
    },
    "xdsServer": {
        "grpcPort": 5678,
        "diagnosticsPort": 5680,
        "dataplaneConfigurationRefreshInterval": "1s",
        "dataplaneStatusFlushInterval": "1s",
        "address": "0.0.0.0",
        "tlsEnabled": True,
        "maxStreams": 10000,
        "streamQueueSize": 8,
        "maxResourceNamesPerRequest": 10000,
        "maxResourceNamesPerSubscription": 10000,
        "maxMessageBytes": 4194304,
        "firstRequestTimeout": "30s",
    },
    "apiServer": {
        "port": 5681,
        "readOnly": False,
        "corsAllowedDomains": [
            r"http://localhost:5683",
            r"http://127\.0\.0\.1:5683",
            r"http://\[::1\]:5683",
        ],
        "address": "0.0.0.0",
        "adminToken": "",
        "adminTokenFile": "",
        "workers": 0,
        "threads": 8,
    },
    "runtime": {"kubernetes": {"admissionServer": {"address": "", "port": 5443, "certDir": ""}}},
    "defaults": {"mesh": "type: Mesh\nname: default\nmtls:\n  ca: {}\n  enabled: false\n"},
    "reports": {"enabled": True},
    "general": {
        "advertisedHostname": "localhost",
        "trustLoopback": True,
        "localHostnames": [],
        "tlsCertFile": "",
        "tlsKeyFile": "",
        "tlsServerNames": [],
    },
    "guiServer": {"port": 5683, "apiServerUrl": "", "workers": 1, "threads": 8},
    "changeFeed": {
        "type": "memory",
        "redis": {"url": "redis://127.0.0.1:6379/0", "channel": "kuma:changes"},
        "revisionPollInterval": "5s",
        "debounce": "50ms",
    },
    "worker": {
        "amqpUri": "amqp://guest:guest@127.0.0.1:5672/",
        "metricsPort": 0,
        "sweepInterval": "10s",
        "heartbeatTimeout": "10s",
        "insightCleanupInterval": "1m0s",
        "insightKeepClosed": 5,
        "healthFile": "",
        "healthInterval": "5s",
    },
}

# spec §2.3 env var names (the code names, quirks included) plus this design's additions;
# kept as text to compare with the spec at a glance
SPEC_ENV_VARS = """
KUMA_ENVIRONMENT KUMA_STORE_TYPE KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE KUMA_STORE_POSTGRES_HOST
KUMA_STORE_POSTGRES_PORT KUMA_STORE_POSTGRES_USER KUMA_STORE_POSTGRES_PASSWORD
KUMA_STORE_POSTGRES_DB_NAME KUMA_STORE_POSTGRES_CONNECTION_TIMEOUT KUMA_STORE_POSTGRES_TLS_MODE
KUMA_STORE_POSTGRES_TLS_CERT_PATH KUMA_STORE_POSTGRES_TLS_KEY_PATH KUMA_STORE_POSTGRES_TLS_CA_PATH
KUMA_BOOTSTRAP_SERVER_PORT KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ADDRESS
KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_PORT KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ACCESS_LOG_PATH
KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT
KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT KUMA_SDS_SERVER_GRPC_PORT
KUMA_SDS_SERVER_TLS_CERT_FILE KUMA_SDS_SERVER_TLS_KEY_FILE KUMA_DATAPLANE_TOKEN_SERVER_ENABLED
KUMA_DATAPLANE_TOKEN_SERVER_LOCAL_PORT KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_ENABLED
KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_PORT KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_INTERFACE
KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_TLS_CERT_FILE KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_TLS_KEY_FILE
KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_CLIENT_CERTS_DIR KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT
KUMA_MONITORING_ASSIGNMENT_SERVER_ASSIGNMENT_REFRESH_INTERVAL KUMA_ADMIN_SERVER_LOCAL_PORT
KUMA_ADMIN_SERVER_PUBLIC_ENABLED KUMA_ADMIN_SERVER_PUBLIC_PORT KUMA_ADMIN_SERVER_PUBLIC_INTERFACE
KUMA_ADMIN_SERVER_PUBLIC_TLS_CERT_FILE KUMA_ADMIN_SERVER_PUBLIC_TLS_KEY_FILE
KUMA_ADMIN_SERVER_PUBLIC_CLIENT_CERTS_DIR KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED
KUMA_XDS_SERVER_GRPC_PORT KUMA_XDS_SERVER_DIAGNOSTICS_PORT
KUMA_XDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL
KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL KUMA_API_SERVER_PORT KUMA_API_SERVER_READ_ONLY
KUMA_API_SERVER_CORS_ALLOWED_DOMAINS KUMA_KUBERNETES_ADMISSION_SERVER_ADDRESS
KUMA_KUBERNETES_ADMISSION_SERVER_PORT KUMA_KUBERNETES_ADMISSION_SERVER_CERT_DIR KUMA_DEFAULTS_MESH
KUMA_REPORTS_ENABLED KUMA_GENERAL_ADVERTISED_HOSTNAME KUMA_GENERAL_TRUST_LOOPBACK
KUMA_GUI_SERVER_PORT
KUMA_GUI_SERVER_API_SERVER_URL
KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS KUMA_STORE_POSTGRES_MIN_OPEN_CONNECTIONS
KUMA_STORE_MIGRATE_ON_START KUMA_CHANGE_FEED_TYPE KUMA_CHANGE_FEED_REDIS_URL
KUMA_CHANGE_FEED_REDIS_CHANNEL KUMA_CHANGE_FEED_REVISION_POLL_INTERVAL KUMA_CHANGE_FEED_DEBOUNCE
KUMA_WORKER_AMQP_URI KUMA_WORKER_METRICS_PORT KUMA_API_SERVER_ADDRESS KUMA_API_SERVER_ADMIN_TOKEN
KUMA_API_SERVER_ADMIN_TOKEN_FILE
KUMA_XDS_SERVER_ADDRESS KUMA_XDS_SERVER_TLS_ENABLED KUMA_XDS_SERVER_MAX_STREAMS
KUMA_XDS_SERVER_STREAM_QUEUE_SIZE KUMA_XDS_SERVER_MAX_RESOURCE_NAMES_PER_REQUEST
KUMA_XDS_SERVER_MAX_RESOURCE_NAMES_PER_SUBSCRIPTION KUMA_XDS_SERVER_MAX_MESSAGE_BYTES
KUMA_XDS_SERVER_FIRST_REQUEST_TIMEOUT
KUMA_GENERAL_TLS_CERT_FILE KUMA_GENERAL_TLS_KEY_FILE KUMA_GENERAL_TLS_SERVER_NAMES
KUMA_SDS_SERVER_CERTIFICATE_LIFETIME KUMA_SDS_SERVER_CERTIFICATE_ROTATION_PERCENT
KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_DEFAULT_VALID_FOR
KUMA_GENERAL_LOCAL_HOSTNAMES
KUMA_WORKER_SWEEP_INTERVAL KUMA_WORKER_HEARTBEAT_TIMEOUT KUMA_WORKER_INSIGHT_CLEANUP_INTERVAL
KUMA_WORKER_INSIGHT_KEEP_CLOSED KUMA_WORKER_HEALTH_FILE KUMA_WORKER_HEALTH_INTERVAL
KUMA_API_WORKERS KUMA_API_THREADS KUMA_BOOTSTRAP_WORKERS KUMA_BOOTSTRAP_THREADS
KUMA_GUI_WORKERS KUMA_GUI_THREADS
""".split()  # noqa: SIM905


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kuma-cp.yaml"
    path.write_text(text)
    return str(path)


def error_of(env: dict[str, str] | None = None, path: str | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=env or {})
    return str(exc.value)


# --- defaults, file, env ---


def test_defaults_are_the_specs() -> None:
    assert to_json(load_config(env={}), mask_passwords=False) == SPEC_DEFAULTS
    assert load_config(env={}) == KumaCpConfig()


def test_env_var_names_are_the_specs() -> None:
    assert sorted(ENV_VARS) == sorted(SPEC_ENV_VARS)
    assert ENV_VARS["KUMA_STORE_POSTGRES_TLS_CA_PATH"] == "store.postgres.tls.caPath"
    assert ENV_VARS["KUMA_KUBERNETES_ADMISSION_SERVER_PORT"] == (
        "runtime.kubernetes.admissionServer.port"
    )


def test_attribute_layout() -> None:
    cfg = KumaCpConfig()
    assert cfg.store.postgres.db_name == "kuma"
    assert cfg.store.postgres.tls.ca_path == ""
    assert cfg.api_server.port == 5681
    assert cfg.xds_server.grpc_port == 5678
    assert cfg.xds_server.diagnostics_port == 5680
    assert cfg.bootstrap_server.params.xds_connect_timeout == timedelta(seconds=1)
    assert cfg.change_feed.redis.channel == "kuma:changes"
    assert cfg.change_feed.debounce == timedelta(milliseconds=50)
    assert cfg.worker.amqp_uri.startswith("amqp://")
    assert cfg.admin_server.apis.dataplane_token.enabled is True


def test_file_overrides_defaults_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
environment: kubernetes
store:
  type: postgres
  postgres:
    host: db.example
    port: 5432
    password: 0123
    tls: {mode: verifyNone}
xdsServer:
  dataplaneConfigurationRefreshInterval: 1h30m
apiServer:
  corsAllowedDomains: [a.example, b.example]
runtime:
  kubernetes:
    admissionServer: {certDir: /certs}
bootstrapServer:
  params:
    xdsHost:
changeFeed:
  type: redis
  debounce: 250ms
defaults:
  mesh: |
    type: Mesh
    name: default
    mtls: {enabled: true, ca: {builtin: {}}}
""",
    )
    cfg = load_config(path, env={})
    assert cfg.environment == "kubernetes"
    assert cfg.store.type == "postgres"
    assert cfg.store.postgres.host == "db.example"
    assert cfg.store.postgres.port == 5432
    assert cfg.store.postgres.password == "0123"  # text as written, like yaml.v2
    assert cfg.store.postgres.user == "kuma"  # untouched keys keep their defaults
    assert cfg.store.postgres.tls.mode == "verifyNone"
    assert cfg.xds_server.dataplane_configuration_refresh_interval == timedelta(hours=1, minutes=30)
    assert cfg.api_server.cors_allowed_domains == ("a.example", "b.example")
    assert cfg.runtime.kubernetes.admission_server.cert_dir == "/certs"
    assert cfg.bootstrap_server.params.xds_host == ""  # null leaf = zero value
    assert cfg.change_feed.type == "redis"
    assert cfg.change_feed.debounce == timedelta(milliseconds=250)
    assert "builtin" in cfg.defaults.mesh


def test_defaults_mesh_may_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  mesh:\n    type: Mesh\n    name: default\n")
    assert load_config(path, env={}).defaults.mesh == "type: Mesh\nname: default\n"


def test_empty_file_and_empty_section_keep_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env={}) == KumaCpConfig()
    assert load_config(write(tmp_path, "store:\n"), env={}) == KumaCpConfig()


def test_env_wins_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "environment: kubernetes\napiServer: {port: 1000, readOnly: true}\n")
    env = {
        "KUMA_ENVIRONMENT": "universal",
        "KUMA_API_SERVER_PORT": "2000",
        "KUMA_API_SERVER_READ_ONLY": "F",
        "KUMA_API_SERVER_CORS_ALLOWED_DOMAINS": "a.example, b.example,",
        "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "1.5s",
        "KUMA_STORE_POSTGRES_TLS_CA_PATH": "/ca.pem",
        "KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED": "0",
        "KUMA_DEFAULTS_MESH": "type: Mesh\nname: default\n",
        "KUMA_KUBERNETES_ADMISSION_SERVER_PORT": "6443",
        "KUMA_GENERAL_ADVERTISED_HOSTNAME": "",  # set-but-empty still wins
        "UNRELATED": "x",
    }
    cfg = load_config(path, env=env)
    assert cfg.environment == "universal"
    assert cfg.api_server.port == 2000
    assert cfg.api_server.read_only is False
    assert cfg.api_server.cors_allowed_domains == ("a.example", "b.example")
    assert cfg.xds_server.dataplane_status_flush_interval == timedelta(seconds=1.5)
    assert cfg.store.postgres.tls.ca_path == "/ca.pem"
    assert cfg.admin_server.apis.dataplane_token.enabled is False
    assert cfg.defaults.mesh == "type: Mesh\nname: default\n"
    assert cfg.runtime.kubernetes.admission_server.port == 6443
    assert cfg.general.advertised_hostname == ""


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMA_XDS_SERVER_GRPC_PORT", "7000")
    assert load_config().xds_server.grpc_port == 7000


@pytest.mark.parametrize(
    ("text", "value"),
    [(t, True) for t in ["1", "t", "T", "TRUE", "true", "True"]]
    + [(f, False) for f in ["0", "f", "F", "FALSE", "false", "False"]],
)
def test_go_bool_syntax(text: str, value: bool) -> None:
    assert parse_go_bool(text) is value
    assert load_config(env={"KUMA_REPORTS_ENABLED": text}).reports.enabled is value


# --- loading errors ---


def test_missing_file() -> None:
    assert error_of(path="/nonexistent/kuma.yaml") == (
        'Failed to access configuration file "/nonexistent/kuma.yaml"'
    )


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    message = error_of(path=write(tmp_path, "store:\n  postgres:\n    dbname: x\n"))
    assert message == (
        'Invalid configuration: store.postgres.dbname: unknown key (did you mean "dbName"?)'
    )
    assert error_of(path=write(tmp_path, "injector: {}\n")) == (
        "Invalid configuration: injector: unknown key"
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ('store: {postgres: {port: "abc"}}', 'store.postgres.port: expected an integer, got "abc"'),
        ("store: {postgres: {port: [1]}}", "store.postgres.port: expected an integer, got a list"),
        ("apiServer: {readOnly: maybe}", 'apiServer.readOnly: expected a boolean, got "maybe"'),
        (
            "xdsServer: {dataplaneStatusFlushInterval: 5}",
            'xdsServer.dataplaneStatusFlushInterval: expected a duration such as "1s", got "5"',
        ),
        (
            "bootstrapServer: {port: -1}",
            'bootstrapServer.port: expected a non-negative integer, got "-1"',
        ),
        (
            "apiServer: {corsAllowedDomains: x}",
            'apiServer.corsAllowedDomains: expected a list of strings, got "x"',
        ),
        ("store: {type: {a: 1}}", "store.type: expected a string, got a mapping"),
        ("store: 5", 'store: expected a mapping, got "5"'),
        ("- a", "<top level>: expected a mapping, got a list"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    assert error_of(path=write(tmp_path, yaml_text)) == f"Invalid configuration: {message}"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "store:\n  type: [memory\n")
    message = error_of(path=path)
    assert message.startswith(f'Invalid configuration: could not parse "{path}" as YAML: ')
    assert "line" in message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KUMA_STORE_POSTGRES_PORT": "abc"},
            'KUMA_STORE_POSTGRES_PORT (store.postgres.port): expected an integer, got "abc"',
        ),
        (
            {"KUMA_API_SERVER_READ_ONLY": "yes"},
            'KUMA_API_SERVER_READ_ONLY (apiServer.readOnly): expected a boolean, got "yes"',
        ),
        (
            {"KUMA_CHANGE_FEED_DEBOUNCE": "10"},
            'KUMA_CHANGE_FEED_DEBOUNCE (changeFeed.debounce): expected a duration such as "1s", '
            'got "10"',
        ),
        (
            {"KUMA_GUI_SERVER_PORT": "-5"},
            'KUMA_GUI_SERVER_PORT (guiServer.port): expected a non-negative integer, got "-5"',
        ),
    ],
)
def test_bad_env_value_names_the_variable(env: dict[str, str], message: str) -> None:
    assert error_of(env) == f"Invalid configuration: {message}"


# --- validation (spec §2.3 "Validation rules and messages") ---

PG = {"KUMA_STORE_TYPE": "postgres"}
K8S = {"KUMA_ENVIRONMENT": "kubernetes", "KUMA_KUBERNETES_ADMISSION_SERVER_CERT_DIR": "/c"}
BOOT = "Bootstrap Server validation failed: Params validation failed: "
TOKEN = "Dataplane Token Server validation failed: "
ADMIN = "Admin Server validation failed: "
STORE = "Store validation failed: "
POSTGRES = STORE + "Postgres validation failed: "
TLS = POSTGRES + "TLS validation failed: "
ADMISSION = "Runtime validation failed: Kubernetes validation failed: "
ADMISSION += "Admission Server validation failed: "
FEED = "Change Feed validation failed: "
MADS = "Monitoring Assignment Server validation failed: "
PUBLIC = {
    "KUMA_ADMIN_SERVER_PUBLIC_ENABLED": "true",
    "KUMA_ADMIN_SERVER_PUBLIC_TLS_CERT_FILE": "/c",
    "KUMA_ADMIN_SERVER_PUBLIC_TLS_KEY_FILE": "/k",
    "KUMA_ADMIN_SERVER_PUBLIC_INTERFACE": "0.0.0.0",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KUMA_XDS_SERVER_GRPC_PORT": "-1"},
            "Xds Server validation failed: GrpcPort cannot be negative",
        ),
        (
            {"KUMA_XDS_SERVER_DIAGNOSTICS_PORT": "-1"},
            "Xds Server validation failed: DiagnosticPort cannot be negative",
        ),
        (
            {"KUMA_XDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL": "0s"},
            "Xds Server validation failed: DataplaneConfigurationRefreshInterval must be positive",
        ),
        (
            {"KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "-1s"},
            "Xds Server validation failed: DataplaneStatusFlushInterval must be positive",
        ),
        (
            {"KUMA_BOOTSTRAP_SERVER_PORT": "65536"},
            "Bootstrap Server validation failed: Port must be in the range [0, 65535]",
        ),
        ({"KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ADDRESS": ""}, BOOT + "AdminAddress cannot be empty"),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ADDRESS": "localhost"},
            BOOT + "AdminAddress should be a valid IP address",
        ),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_PORT": "70000"},
            BOOT + "AdminPort must be in the range [0, 65535]",
        ),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ACCESS_LOG_PATH": ""},
            BOOT + "AdminAccessLogPath cannot be empty",
        ),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": "70000"},  # Kuma's message says AdminPort
            BOOT + "AdminPort must be in the range [0, 65535]",
        ),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT": "-1s"},
            BOOT + "XdsConnectTimeout cannot be negative",
        ),
        (
            {"KUMA_SDS_SERVER_GRPC_PORT": "-1"},
            "SDS Server validation failed: GrpcPort cannot be negative",
        ),
        (
            {"KUMA_SDS_SERVER_TLS_KEY_FILE": "/k"},
            "SDS Server validation failed: TlsCertFile cannot be empty if TlsKeyFile has been set",
        ),
        (
            {"KUMA_SDS_SERVER_TLS_CERT_FILE": "/c"},
            "SDS Server validation failed: TlsKeyFile cannot be empty if TlsCertFile has been set",
        ),
        (
            {"KUMA_DATAPLANE_TOKEN_SERVER_LOCAL_PORT": "65536"},
            TOKEN + "Local validation failed: Port must be in the range [0, 65535]",
        ),
        (
            {"KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_PORT": "65536"},
            TOKEN + "Public validation failed: Port must be in the range [0, 65535]",
        ),
        (
            {"KUMA_DATAPLANE_TOKEN_SERVER_PUBLIC_ENABLED": "true"},
            TOKEN + "Public validation failed: TlsCertFile cannot be empty if server is enabled",
        ),
        (
            {
                "KUMA_DATAPLANE_TOKEN_SERVER_ENABLED": "false",
                **{
                    k.replace("ADMIN_SERVER", "DATAPLANE_TOKEN_SERVER"): v
                    for k, v in PUBLIC.items()
                },
            },
            TOKEN + "Public.Enabled cannot be true when server is disabled.",
        ),
        (
            {"KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT": "65536"},
            MADS + ".GrpcPort must be in the range [0, 65535]",
        ),
        (
            {"KUMA_MONITORING_ASSIGNMENT_SERVER_ASSIGNMENT_REFRESH_INTERVAL": "0s"},
            MADS + ".AssignmentRefreshInterval must be positive",
        ),
        (
            {"KUMA_ADMIN_SERVER_LOCAL_PORT": "65536"},
            ADMIN + "Local validation failed: Port must be in the range [0, 65535]",
        ),
        (
            {**PUBLIC, "KUMA_ADMIN_SERVER_PUBLIC_TLS_CERT_FILE": ""},
            ADMIN + "Public validation failed: TlsCertFile cannot be empty if server is enabled",
        ),
        (
            {**PUBLIC, "KUMA_ADMIN_SERVER_PUBLIC_TLS_KEY_FILE": ""},
            ADMIN + "Public validation failed: TlsKeyFile cannot be empty if server is enabled",
        ),
        (
            {**PUBLIC, "KUMA_ADMIN_SERVER_PUBLIC_INTERFACE": ""},
            ADMIN + "Public validation failed: Interface cannot be empty if server is enabled",
        ),
        ({"KUMA_ENVIRONMENT": "mars"}, "Environment should be either kubernetes or universal"),
        (
            {"KUMA_STORE_TYPE": "etcd"},
            STORE + "Type should be either postgres, kubernetes or memory",
        ),
        ({**PG, "KUMA_STORE_POSTGRES_HOST": ""}, POSTGRES + "Host should not be empty"),
        ({**PG, "KUMA_STORE_POSTGRES_PORT": "-1"}, POSTGRES + "Port cannot be negative"),
        ({**PG, "KUMA_STORE_POSTGRES_USER": ""}, POSTGRES + "User should not be empty"),
        ({**PG, "KUMA_STORE_POSTGRES_PASSWORD": ""}, POSTGRES + "Password should not be empty"),
        ({**PG, "KUMA_STORE_POSTGRES_DB_NAME": ""}, POSTGRES + "DbName should not be empty"),
        ({**PG, "KUMA_STORE_POSTGRES_TLS_MODE": "require"}, TLS + "invalid mode: require"),
        ({**PG, "KUMA_STORE_POSTGRES_TLS_MODE": "verifyCa"}, TLS + "CAPath cannot be empty"),
        ({**PG, "KUMA_STORE_POSTGRES_TLS_MODE": "verifyFull"}, TLS + "CAPath cannot be empty"),
        (
            {**PG, "KUMA_STORE_POSTGRES_TLS_CERT_PATH": "/c"},
            TLS + "KeyPath cannot be empty when CertPath is provided",
        ),
        (
            {**PG, "KUMA_STORE_POSTGRES_TLS_KEY_PATH": "/k"},
            TLS + "CertPath cannot be empty when KeyPath is provided",
        ),
        (
            {**PG, "KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS": "0"},
            POSTGRES + "MaxOpenConnections must be at least 1",
        ),
        (
            {**PG, "KUMA_STORE_POSTGRES_MIN_OPEN_CONNECTIONS": "0"},
            POSTGRES + "MinOpenConnections must be at least 1",
        ),
        (
            {**PG, "KUMA_STORE_POSTGRES_MIN_OPEN_CONNECTIONS": "11"},
            POSTGRES + "MinOpenConnections cannot be greater than MaxOpenConnections",
        ),
        (
            {"KUMA_STORE_TYPE": "kubernetes", "KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE": ""},
            STORE + "Kubernetes validation failed: SystemNamespace should not be empty",
        ),
        ({"KUMA_API_SERVER_PORT": "-1"}, "ApiServer validation failed: Port cannot be negative"),
        (
            {**K8S, "KUMA_KUBERNETES_ADMISSION_SERVER_PORT": "65536"},
            ADMISSION + "Port must be in the range [0, 65535]",
        ),
        (
            {**K8S, "KUMA_KUBERNETES_ADMISSION_SERVER_CERT_DIR": ""},
            ADMISSION + "CertDir should not be empty",
        ),
        (
            {"KUMA_DEFAULTS_MESH": "- a\n- b\n"},
            "Defaults validation failed: Mesh must be a YAML mapping",
        ),
        (
            {"KUMA_GUI_SERVER_PORT": "65536"},
            "GuiServer validation failed: Port must be in the range [0, 65535]",
        ),
        ({"KUMA_CHANGE_FEED_TYPE": "kafka"}, FEED + "Type should be either memory or redis"),
        (
            {"KUMA_CHANGE_FEED_REVISION_POLL_INTERVAL": "0s"},
            FEED + "RevisionPollInterval must be positive",
        ),
        ({"KUMA_CHANGE_FEED_DEBOUNCE": "-1ms"}, FEED + "Debounce cannot be negative"),
        (
            {"KUMA_CHANGE_FEED_TYPE": "redis", "KUMA_CHANGE_FEED_REDIS_URL": "http://x"},
            FEED + "Redis validation failed: Url must be a redis://, rediss:// or unix:// URL",
        ),
        (
            {"KUMA_CHANGE_FEED_TYPE": "redis", "KUMA_CHANGE_FEED_REDIS_CHANNEL": ""},
            FEED + "Redis validation failed: Channel should not be empty",
        ),
        (
            {"KUMA_WORKER_AMQP_URI": "amqp://[not-ipv6"},
            "Worker validation failed: AmqpUri must be an amqp:// or amqps:// URI",
        ),
        (
            {"KUMA_WORKER_AMQP_URI": "localhost"},
            "Worker validation failed: AmqpUri must be an amqp:// or amqps:// URI",
        ),
        (
            {"KUMA_WORKER_METRICS_PORT": "65536"},
            "Worker validation failed: MetricsPort must be in the range [0, 65535]",
        ),
        *(
            ({f"KUMA_WORKER_{env}": "0s"}, f"Worker validation failed: {key} must be positive")
            for env, key in [
                ("SWEEP_INTERVAL", "SweepInterval"),
                ("HEARTBEAT_TIMEOUT", "HeartbeatTimeout"),
                ("INSIGHT_CLEANUP_INTERVAL", "InsightCleanupInterval"),
                ("HEALTH_INTERVAL", "HealthInterval"),
            ]
        ),
        # gunicorn's knobs keep the env var names they had before they were config keys
        *(
            (
                {f"KUMA_{name}_THREADS": "0"},
                f"{section} validation failed: Threads must be at least 1",
            )
            for name, section in [
                ("API", "ApiServer"),
                ("BOOTSTRAP", "Bootstrap Server"),
                ("GUI", "GuiServer"),
            ]
        ),
        (
            {"KUMA_API_WORKERS": "-1"},
            'KUMA_API_WORKERS (apiServer.workers): expected a non-negative integer, got "-1"',
        ),
    ],
)
def test_validation_messages(env: dict[str, str], message: str) -> None:
    assert error_of(env) == f"Invalid configuration: {message}"


@pytest.mark.parametrize(
    "env",
    [
        {
            **PG,
            "KUMA_STORE_POSTGRES_TLS_MODE": "verifyFull",
            "KUMA_STORE_POSTGRES_TLS_CA_PATH": "/a",
        },
        {"KUMA_STORE_POSTGRES_HOST": ""},  # postgres is checked only when selected
        {"KUMA_KUBERNETES_ADMISSION_SERVER_CERT_DIR": ""},  # runtime only on kubernetes
        K8S,
        PUBLIC,
        {"KUMA_CHANGE_FEED_TYPE": "redis", "KUMA_CHANGE_FEED_REDIS_URL": "rediss://:pw@h:6380/1"},
    ],
)
def test_valid_configs(env: dict[str, str]) -> None:
    load_config(env=env)


# --- durations ---


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0s", timedelta(0)),
        ("0", timedelta(0)),
        ("1s", timedelta(seconds=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("250ms", timedelta(milliseconds=250)),
        ("2m", timedelta(minutes=2)),
        ("1m0s", timedelta(minutes=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h0m0s", timedelta(hours=1)),
        ("2h3m4s", timedelta(hours=2, minutes=3, seconds=4)),
        ("1.5s", timedelta(seconds=1.5)),
        ("10us", timedelta(microseconds=10)),
        ("10µs", timedelta(microseconds=10)),
        ("3000ns", timedelta(microseconds=3)),
        ("-1s", timedelta(seconds=-1)),
    ],
)
def test_parse_go_duration(text: str, value: timedelta) -> None:
    assert parse_go_duration(text) == value


@pytest.mark.parametrize("text", ["", " ", "5", "s", "1x", "1s2", "-", "1.2.3s", "abc"])
def test_parse_go_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


@pytest.mark.parametrize(
    "text", ["0s", "1s", "30s", "1m0s", "1h0m0s", "2h3m4s", "1.5s", "250ms", "10µs", "-1m30s"]
)
def test_go_duration_round_trip(text: str) -> None:
    assert format_go_duration(parse_go_duration(text)) == text


def test_format_go_duration_normalises() -> None:
    assert format_go_duration(timedelta(minutes=90)) == "1h30m0s"
    assert format_go_duration(timedelta(days=1)) == "24h0m0s"
    assert format_go_duration(parse_go_duration("2m")) == "2m0s"


# --- autoconfiguration, catalog, JSON ---


def test_autoconfigure_defaults() -> None:
    cfg = autoconfigure(KumaCpConfig())
    assert cfg.bootstrap_server.params.xds_host == "localhost"
    assert cfg.bootstrap_server.params.xds_port == 5678
    assert cfg.gui_server.api_server_url == "http://localhost:5681"
    assert cfg.admin_server == KumaCpConfig().admin_server
    assert autoconfigure(cfg) == cfg


def test_autoconfigure_keeps_explicit_xds_params_and_follows_general() -> None:
    cfg = load_config(
        env={
            "KUMA_GENERAL_ADVERTISED_HOSTNAME": "cp.example",
            "KUMA_XDS_SERVER_GRPC_PORT": "9000",
            "KUMA_API_SERVER_PORT": "9001",
        }
    )
    params = autoconfigure(cfg).bootstrap_server.params
    assert (params.xds_host, params.xds_port) == ("cp.example", 9000)
    assert autoconfigure(cfg).gui_server.api_server_url == "http://localhost:9001"
    explicit = load_config(
        env={
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST": "x",
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": "1",
        }
    )
    params = autoconfigure(explicit).bootstrap_server.params
    assert (params.xds_host, params.xds_port) == ("x", 1)


def test_autoconfigure_copies_deprecated_token_server() -> None:
    cfg = load_config(
        env={
            "KUMA_DATAPLANE_TOKEN_SERVER_ENABLED": "false",
            "KUMA_DATAPLANE_TOKEN_SERVER_LOCAL_PORT": "6000",
            "KUMA_ADMIN_SERVER_LOCAL_PORT": "7000",  # replaced: the deprecated section wins
        }
    )
    admin = autoconfigure(cfg).admin_server
    assert admin.local.port == 6000
    assert admin.apis.dataplane_token.enabled is False
    assert catalog(cfg)["apis"]["dataplaneToken"] == {"localUrl": "", "publicUrl": ""}
    # The admin APIs are served by the API (docs/compat.md): its port, not the admin server's.
    assert catalog(cfg)["apis"]["admin"]["localUrl"] == "http://localhost:5681"


def test_autoconfigure_public_port_defaults_to_local() -> None:
    cfg = load_config(env={**PUBLIC, "KUMA_GENERAL_ADVERTISED_HOSTNAME": "cp.example"})
    assert autoconfigure(cfg).admin_server.public.port == 5679
    # No admin server listens here: the catalog names the API, and no HTTPS public URL.
    api = load_config(env={**PUBLIC, "KUMA_API_SERVER_PORT": "6681"})
    assert catalog(api)["apis"]["admin"] == {"localUrl": "http://localhost:6681", "publicUrl": ""}
    assert catalog(api)["apis"]["dataplaneToken"] == catalog(api)["apis"]["admin"]
    explicit = load_config(env={**PUBLIC, "KUMA_ADMIN_SERVER_PUBLIC_PORT": "5690"})
    assert autoconfigure(explicit).admin_server.public.port == 5690


def test_catalog_of_defaults_is_the_specs_but_bootstrap_over_https() -> None:
    # docs/compat.md: the bootstrap server speaks https to other hosts (Kuma 0.3: http), MADS
    # TLS as 5678 (grpcs), and the admin server's APIs are the API's (Kuma 0.3: a server of
    # their own on 5679)
    assert catalog(KumaCpConfig()) == {
        "apis": {
            "bootstrap": {"url": "https://localhost:5682"},
            "dataplaneToken": {"localUrl": "http://localhost:5681", "publicUrl": ""},
            "admin": {"localUrl": "http://localhost:5681", "publicUrl": ""},
            "monitoringAssignment": {"url": "grpcs://localhost:5676"},
        }
    }
    plaintext = load_config(env={"KUMA_XDS_SERVER_TLS_ENABLED": "false"})
    assert catalog(plaintext)["apis"]["monitoringAssignment"] == {"url": "grpc://localhost:5676"}


def test_to_json_masks_secrets() -> None:
    cfg = load_config(
        env={
            "KUMA_API_SERVER_ADMIN_TOKEN": "s3cret",
            "KUMA_CHANGE_FEED_REDIS_URL": "redis://:pw@redis:6379/0",
            "KUMA_WORKER_AMQP_URI": "amqp://kuma:pw@mq:5672/vhost",
        }
    )
    masked = to_json(cfg)
    assert masked["store"]["postgres"]["password"] == "*****"
    assert masked["apiServer"]["adminToken"] == "*****"
    assert masked["changeFeed"]["redis"]["url"] == "redis://:*****@redis:6379/0"
    assert masked["worker"]["amqpUri"] == "amqp://kuma:*****@mq:5672/vhost"
    assert "pw" not in str(masked) and "s3cret" not in str(masked)
    assert to_json(KumaCpConfig())["apiServer"]["adminToken"] == ""  # "" = to be generated
    broken = replace(cfg, worker=replace(cfg.worker, amqp_uri="amqp://u:pw@[x"))
    assert to_json(broken)["worker"]["amqpUri"] == "*****"
    plain = to_json(cfg, mask_passwords=False)
    assert plain["store"]["postgres"]["password"] == "kuma"
    assert plain["worker"]["amqpUri"] == "amqp://kuma:pw@mq:5672/vhost"


def test_to_json_after_autoconfigure_is_the_config_endpoint() -> None:
    shown = to_json(autoconfigure(KumaCpConfig()))
    assert shown["bootstrapServer"]["params"]["xdsHost"] == "localhost"
    assert shown["bootstrapServer"]["params"]["xdsPort"] == 5678
    assert shown["bootstrapServer"]["params"]["xdsConnectTimeout"] == "1s"
    assert shown["guiServer"]["apiServerUrl"] == "http://localhost:5681"
    assert shown["defaults"]["mesh"].startswith("type: Mesh\n")


# --- postgres ---


@pytest.mark.parametrize(
    ("mode", "sslmode"),
    [
        ("disable", "disable"),
        ("verifyNone", "require"),
        ("verifyCa", "verify-ca"),
        ("verifyFull", "verify-full"),
    ],
)
def test_conninfo_tls_modes(mode: str, sslmode: str) -> None:
    pg = KumaCpConfig().store.postgres
    pg = replace(pg, tls=replace(pg.tls, mode=mode))
    assert postgres_conninfo(pg) == (
        "host=127.0.0.1 port=15432 user=kuma password=kuma dbname=kuma connect_timeout=5 "
        f"sslmode={sslmode}"
    )


def test_conninfo_quotes_and_files() -> None:
    pg = KumaCpConfig().store.postgres
    pg = replace(
        pg,
        password="it's a \\secret",
        user="",
        tls=replace(
            pg.tls, mode="verifyFull", cert_path="/c.pem", key_path="/k.pem", ca_path="/a b"
        ),
    )
    assert postgres_conninfo(pg) == (
        "host=127.0.0.1 port=15432 user='' password='it\\'s a \\\\secret' dbname=kuma "
        "connect_timeout=5 sslmode=verify-full sslcert=/c.pem sslkey=/k.pem sslrootcert='/a b'"
    )


def test_conninfo_is_understood_by_libpq_parser() -> None:
    conninfo = pytest.importorskip("psycopg.conninfo")
    pg = replace(KumaCpConfig().store.postgres, password="it's = \\odd")
    assert conninfo.conninfo_to_dict(postgres_conninfo(pg))["password"] == "it's = \\odd"


def test_conninfo_rejects_unknown_mode() -> None:
    pg = KumaCpConfig().store.postgres
    with pytest.raises(ConfigError, match="invalid mode: require"):
        postgres_conninfo(replace(pg, tls=replace(pg.tls, mode="require")))
