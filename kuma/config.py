"""kuma-cp configuration: defaults, an optional YAML file, then KUMA_* env vars (spec §2.2-§2.4).

The schema is the nested frozen dataclasses below, in the order of spec §2.3. A leaf's YAML key
is its attribute name in camelCase; its env var is `KUMA_` + the upper-cased attribute path, unless
the field's metadata names another (the admission server's `KUMA_KUBERNETES_...` names). Loading,
env overrides, `to_json` and `ENV_VARS` are all driven by that one schema, so a new setting is one
line here.

Deliberate choices:
- An unknown key in the config file is an error naming the key: a typo must not be silently ignored
  (Kuma's yaml.v2 loader ignored it).
- Values must have the YAML type of their field (`port: "5"` is an error), as with yaml.v2; a null
  leaf (`xdsHost:`) means the field's zero value, also as with yaml.v2.
- `defaults.mesh` is set by `KUMA_DEFAULTS_MESH` (Kuma's code only honoured `DEFAULTS_MESH`), and in
  the file it may be a YAML string (Kuma's form) or a plain mapping.
- `load_config` validates but does not autoconfigure: kuma-cp logs the config before `autoconfigure`
  and serves it after (spec §16.13).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import typing
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kuma.durations import format_go_duration, parse_duration
from kuma.errors import ConfigError
from kuma.netutil import xds_host_problem

__all__ = [
    "ENV_VARS",
    "KumaCpConfig",
    "autoconfigure",
    "catalog",
    "env_vars",
    "format_go_duration",
    "load_config",
    "option",
    "parse_go_bool",
    "parse_go_duration",
    "postgres_conninfo",
    "read_settings",
    "section",
    "to_json",
    "validate",
]

MASK = "*****"
_T = TypeVar("_T")


def option(
    default: Any,
    *,
    env: str | None = None,
    unsigned: bool = False,
    secret: str | None = None,
    yaml_text: bool = False,
) -> Any:
    """A leaf setting. `unsigned`: Go uint32 (negative is a type error, not a validation error);
    `secret`: "value" or "url" (how `to_json` masks it); `yaml_text`: holds a YAML document."""
    meta = {"env": env, "unsigned": unsigned, "secret": secret, "yaml_text": yaml_text}
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    return field(default_factory=cls)


# --- schema (spec §2.3, plus this design's store pool, changeFeed, worker, apiServer additions) ---


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


# --- schema walking ---


def _is_section(hint: Any) -> typing.TypeGuard[type]:
    return isinstance(hint, type) and is_dataclass(hint)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_SCHEMAS: dict[type, dict[str, tuple[Field[Any], Any]]] = {}


def _schema(cls: type) -> dict[str, tuple[Field[Any], Any]]:
    """YAML key -> (field, resolved type) of one section, in declaration order."""
    if cls not in _SCHEMAS:
        hints = typing.get_type_hints(cls)
        _SCHEMAS[cls] = {_camel(f.name): (f, hints[f.name]) for f in fields(cls)}
    return _SCHEMAS[cls]


@dataclass(frozen=True, slots=True)
class _Leaf:
    attrs: tuple[str, ...]  # python attribute path
    key: str  # dotted YAML key path
    env: str
    kind: type  # int | bool | str | timedelta | tuple
    meta: Mapping[str, Any]


def _leaves(cls: type, attrs: tuple[str, ...] = (), keys: tuple[str, ...] = ()) -> Iterator[_Leaf]:
    for key, (f, hint) in _schema(cls).items():
        if _is_section(hint):
            yield from _leaves(hint, (*attrs, f.name), (*keys, key))
        else:
            env = f.metadata["env"] or "KUMA_" + "_".join((*attrs, f.name)).upper()
            kind = typing.get_origin(hint) or hint
            yield _Leaf((*attrs, f.name), ".".join((*keys, key)), env, kind, f.metadata)


def env_vars(root_cls: type) -> Mapping[str, str]:
    """Every env var the settings tree `root_cls` reads -> the YAML key path it sets."""
    return {leaf.env: leaf.key for leaf in _leaves(root_cls)}


ENV_VARS: Mapping[str, str] = env_vars(KumaCpConfig)
"""Every env var kuma-cp reads -> the YAML key path it sets."""


# --- value parsing ---

_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_EXPECTED = {
    int: "an integer",
    bool: "a boolean",
    str: "a string",
    timedelta: 'a duration such as "1s"',
    tuple: "a list of strings",
}
_YAML_TAG = "tag:yaml.org,2002:"


def parse_go_bool(text: str) -> bool:
    """Go's strconv.ParseBool; raise ValueError for anything else."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r}")


def parse_go_duration(text: str) -> timedelta:
    """Go's time.ParseDuration (`0s`, `500ms`, `1h30m`, `1.5s`, `us`, `µs`, `ns`), else ValueError.

    Precision is a microsecond (timedelta's): sub-microsecond parts are lost.
    """
    return parse_duration(text)


def _invalid(where: str, problem: str) -> ConfigError:
    return ConfigError(f"Invalid configuration: {where}: {problem}")


def _expected(leaf_kind: type, unsigned: bool) -> str:
    return "a non-negative integer" if leaf_kind is int and unsigned else _EXPECTED[leaf_kind]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _from_text(text: str, kind: type, meta: Mapping[str, Any], where: str) -> Any:
    """Env-var text -> value, with envconfig's syntax (ParseBool, ParseDuration, comma lists)."""
    try:
        if kind is str:
            return text
        if kind is bool:
            return parse_go_bool(text)
        if kind is timedelta:
            return parse_go_duration(text)
        if kind is tuple:
            return tuple(item.strip() for item in text.split(",") if item.strip())
        if re.fullmatch(r"[+-]?\d+", text) and not (meta["unsigned"] and int(text) < 0):
            return int(text)
    except ValueError:
        pass
    raise _invalid(where, f"expected {_expected(kind, meta['unsigned'])}, got {_quote(text)}")


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _quote(str(node.value))


def _from_node(node: Node, kind: type, meta: Mapping[str, Any], where: str, loader: Any) -> Any:
    """YAML node -> value, with yaml.v2's typing: scalars must carry the field's YAML type."""
    tag = node.tag.removeprefix(_YAML_TAG)
    if isinstance(node, ScalarNode) and tag == "null":
        return kind()  # yaml.v2 sets the zero value
    if meta["yaml_text"] and isinstance(node, MappingNode):
        return yaml.safe_dump(loader.construct_object(node, deep=True), sort_keys=False)
    if isinstance(node, ScalarNode):
        if kind is str:
            return node.value  # the text as written, like yaml.v2 (`password: 0123` stays "0123")
        if kind is bool and tag == "bool":
            return loader.construct_object(node)
        if kind is int and tag == "int":
            value = loader.construct_object(node)
            if not (meta["unsigned"] and value < 0):
                return value
        if kind is timedelta:
            try:
                return parse_go_duration(node.value)
            except ValueError:
                pass
    if kind is tuple and isinstance(node, SequenceNode):
        items = node.value
        if all(isinstance(item, ScalarNode) for item in items):
            return tuple(item.value for item in items)
    raise _invalid(where, f"expected {_expected(kind, meta['unsigned'])}, got {_describe(node)}")


def _merge_node(node: Node, cls: type, where: str, out: dict[str, Any], loader: Any) -> None:
    """Collect the file's values of section `cls` into `out` (python attribute names, nested)."""
    if isinstance(node, ScalarNode) and node.tag == _YAML_TAG + "null":
        return  # an empty section keeps its defaults
    if not isinstance(node, MappingNode):
        raise _invalid(where or "<top level>", f"expected a mapping, got {_describe(node)}")
    schema = _schema(cls)
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, ScalarNode) else _describe(key_node)
        here = f"{where}.{key}" if where else key
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise _invalid(here, "unknown key" + hint)
        f, hint_type = schema[key]
        if _is_section(hint_type):
            _merge_node(value_node, hint_type, here, out.setdefault(f.name, {}), loader)
        else:
            kind = typing.get_origin(hint_type) or hint_type
            out[f.name] = _from_node(value_node, kind, f.metadata, here, loader)


def _read_file(path: str, root_cls: type) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f'Failed to access configuration file "{path}"') from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        out: dict[str, Any] = {}
        if root is not None:
            _merge_node(root, root_cls, "", out, loader)
        return out
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f'Invalid configuration: could not parse "{path}" as YAML: {exc.problem}{at}'
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f'Invalid configuration: could not parse "{path}": {exc}') from exc
    finally:
        loader.dispose()


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f, hint in _schema(cls).values():
        if f.name in values:
            kwargs[f.name] = _build(hint, values[f.name]) if _is_section(hint) else values[f.name]
    return cls(**kwargs)


def read_settings(root_cls: type[_T], path: str | None, environ: Mapping[str, str]) -> _T:
    """The settings tree `root_cls` (dataclasses built with `option` and `section`): defaults,
    then the YAML file (if any), then the env vars of its leaves (a set var always wins). Every
    problem raises ConfigError naming the key or env var; validation is the caller's."""
    values = _read_file(path, root_cls) if path is not None else {}
    for leaf in _leaves(root_cls):
        if leaf.env in environ:
            where = f"{leaf.env} ({leaf.key})"
            target = values
            for attr in leaf.attrs[:-1]:
                target = target.setdefault(attr, {})
            target[leaf.attrs[-1]] = _from_text(environ[leaf.env], leaf.kind, leaf.meta, where)
    built: _T = _build(root_cls, values)
    return built


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> KumaCpConfig:
    """kuma-cp's settings (`read_settings`), then `validate`."""
    cfg = read_settings(KumaCpConfig, path, os.environ if env is None else env)
    validate(cfg)
    return cfg


# --- validation (spec §2.3 "Validation rules and messages"; Kuma's section names) ---


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


def _check_bootstrap(b: BootstrapServerConfig) -> str | None:
    return _first(_port_range(b.port)) or _wrap("Params validation failed", _check_params(b.params))


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
    ("ApiServer", lambda c: _first((c.api_server.port < 0, "Port cannot be negative"))),
    ("Runtime", _check_runtime),
    ("Defaults", lambda c: _check_defaults(c.defaults)),
    ("GuiServer", lambda c: _first(_port_range(c.gui_server.port))),
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


# --- autoconfiguration, catalog, JSON view ---


def autoconfigure(cfg: KumaCpConfig) -> KumaCpConfig:
    """Spec §2.4 items 1, 3, 4 (the catalog, item 2, is `catalog`). Idempotent."""
    admin, dts = cfg.admin_server, cfg.dataplane_token_server
    if dts != DataplaneTokenServerConfig():  # the deprecated section was used: it wins entirely
        token_api = AdminServerApisConfig(replace(admin.apis.dataplane_token, enabled=dts.enabled))
        admin = AdminServerConfig(local=dts.local, public=dts.public, apis=token_api)
    if admin.public.enabled and admin.public.port == 0:
        admin = replace(admin, public=replace(admin.public, port=admin.local.port))
    params = cfg.bootstrap_server.params
    params = replace(
        params,
        xds_host=params.xds_host or cfg.general.advertised_hostname,
        xds_port=params.xds_port or cfg.xds_server.grpc_port,
    )
    return replace(
        cfg,
        admin_server=admin,
        bootstrap_server=replace(cfg.bootstrap_server, params=params),
        gui_server=replace(
            cfg.gui_server, api_server_url=f"http://localhost:{cfg.api_server.port}"
        ),
    )


def catalog(cfg: KumaCpConfig) -> dict[str, Any]:
    """The `GET /catalog` document (spec §2.4 item 2, §4.8), from the autoconfigured `cfg`."""
    cfg = autoconfigure(cfg)
    host, admin = cfg.general.advertised_hostname, cfg.admin_server
    # Kuma's admin server APIs (`POST /tokens`, the provided CA) are served by the API itself
    # (docs/compat.md): nothing listens on adminServer.local.port. No `publicUrl`: Kuma's was
    # HTTPS with client certificates, which no server here offers; other hosts use the API's
    # address with the admin token.
    admin_urls = {"localUrl": f"http://localhost:{cfg.api_server.port}", "publicUrl": ""}
    # kuma-dp asks for a token iff dataplaneToken.localUrl is non-empty
    token_on = admin.apis.dataplane_token.enabled
    return {
        "apis": {
            "bootstrap": {"url": f"https://{host}:{cfg.bootstrap_server.port}"},
            "dataplaneToken": {k: v if token_on else "" for k, v in admin_urls.items()},
            "admin": admin_urls,
            # MADS speaks TLS with 5678 (xdsServer.tlsEnabled): grpcs://, as Kuma's client reads it
            "monitoringAssignment": {
                "url": f"{'grpcs' if cfg.xds_server.tls_enabled else 'grpc'}://{host}:"
                f"{cfg.monitoring_assignment_server.grpc_port}"
            },
        }
    }


def _mask_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:  # unparseable: hide it all rather than risk showing a password
        return MASK
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))


def _json_value(value: Any, meta: Mapping[str, Any], mask: bool) -> Any:
    if mask and value and meta["secret"] == "value":
        return MASK
    if mask and meta["secret"] == "url":
        return _mask_url(value)
    if isinstance(value, timedelta):
        return format_go_duration(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def to_json(cfg: object, mask_passwords: bool = True) -> dict[str, Any]:
    """The config (or one section of it) as spec §2.3 YAML keys, durations as Go strings, secrets
    (postgres password, admin token, URL passwords) as `*****` unless `mask_passwords` is False."""
    out: dict[str, Any] = {}
    for key, (f, hint) in _schema(type(cfg)).items():
        value = getattr(cfg, f.name)
        out[key] = (
            to_json(value, mask_passwords)
            if _is_section(hint)
            else _json_value(value, f.metadata, mask_passwords)
        )
    return out


# --- postgres ---

_LIBPQ_SSLMODE = {
    "disable": "disable",
    "verifyNone": "require",
    "verifyCa": "verify-ca",
    "verifyFull": "verify-full",
}


def _conninfo_value(value: str) -> str:
    """libpq quoting: bare when safe, else single quotes with `\\` and `'` escaped."""
    if value and not re.search(r"[\s'\\=]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def postgres_conninfo(pg: PostgresStoreConfig) -> str:
    """A libpq conninfo string for `pg`, TLS modes mapped as Kuma maps them."""
    if pg.tls.mode not in _LIBPQ_SSLMODE:
        raise ConfigError(f"Invalid configuration: invalid mode: {pg.tls.mode}")
    params = {
        "host": pg.host,
        "port": str(pg.port),
        "user": pg.user,
        "password": pg.password,
        "dbname": pg.db_name,
        "connect_timeout": str(pg.connection_timeout),
        "sslmode": _LIBPQ_SSLMODE[pg.tls.mode],
    }
    files = {"sslcert": pg.tls.cert_path, "sslkey": pg.tls.key_path, "sslrootcert": pg.tls.ca_path}
    params.update((name, path) for name, path in files.items() if path)
    return " ".join(f"{name}={_conninfo_value(value)}" for name, value in params.items())
