"""The injector's configuration (spec §11.2): defaults, an optional YAML file, then KUMA_INJECTOR_*
env vars, validated with errors that name the key and, for env vars, the variable.

The file/env machinery is kuma-cp's (`kuma.config`): same YAML typing rules, unknown keys are an
error with a "did you mean", env text parsed like envconfig. Only the schema and the rules live
here, because only the injector reads them.

Env var names are Kuma's: `KUMA_INJECTOR_WEBHOOK_SERVER_*` for the `webHookServer` section, and
the sidecar gid is `KUMA_INJECTOR_SIDECAR_CONTAINER_GUI` (sic, as Kuma spelt it);
`KUMA_INJECTOR_SIDECAR_CONTAINER_GID` is accepted as well and wins when both are set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import yaml

from kuma.config import (  # the shared loader's building blocks (see module docstring)
    _build,
    _from_text,
    _leaves,
    _merge_node,
    _opt,
    _section,
)
from kuma.errors import ConfigError

CONFIG_FILE_ENV = "KUMA_INJECTOR_CONFIG_FILE"
DEFAULT_CERT_DIR = "/var/run/secrets/kuma.io/kuma-injector/tls-cert"
GID_ENV_ALIAS = ("KUMA_INJECTOR_SIDECAR_CONTAINER_GID", "KUMA_INJECTOR_SIDECAR_CONTAINER_GUI")


@dataclass(frozen=True, slots=True)
class WebHookServerConfig:
    address: str = _opt("", env="KUMA_INJECTOR_WEBHOOK_SERVER_ADDRESS")
    port: int = _opt(8443, env="KUMA_INJECTOR_WEBHOOK_SERVER_PORT", unsigned=True)
    cert_dir: str = _opt(DEFAULT_CERT_DIR, env="KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR")

    @property
    def cert_file(self) -> str:
        return os.path.join(self.cert_dir, "tls.crt")

    @property
    def key_file(self) -> str:
        return os.path.join(self.cert_dir, "tls.key")


@dataclass(frozen=True, slots=True)
class ApiServerConfig:
    url: str = _opt("http://kuma-control-plane.kuma-system:5681")


@dataclass(frozen=True, slots=True)
class ControlPlaneConfig:
    api_server: ApiServerConfig = _section(ApiServerConfig)


@dataclass(frozen=True, slots=True)
class ReadinessProbeConfig:
    initial_delay_seconds: int = _opt(1)
    timeout_seconds: int = _opt(3)
    period_seconds: int = _opt(5)
    success_threshold: int = _opt(1)
    failure_threshold: int = _opt(12)


@dataclass(frozen=True, slots=True)
class LivenessProbeConfig:
    initial_delay_seconds: int = _opt(60)
    timeout_seconds: int = _opt(3)
    period_seconds: int = _opt(5)
    failure_threshold: int = _opt(12)


@dataclass(frozen=True, slots=True)
class RequestsConfig:
    cpu: str = _opt("50m")
    memory: str = _opt("64Mi")


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    cpu: str = _opt("1000m")
    memory: str = _opt("512Mi")


@dataclass(frozen=True, slots=True)
class ResourcesConfig:
    requests: RequestsConfig = _section(RequestsConfig)
    limits: LimitsConfig = _section(LimitsConfig)


@dataclass(frozen=True, slots=True)
class SidecarContainerConfig:
    image: str = _opt("kuma/kuma-dp:latest")
    redirect_port: int = _opt(15001, unsigned=True)
    uid: int = _opt(5678, unsigned=True)
    gid: int = _opt(5678, unsigned=True, env="KUMA_INJECTOR_SIDECAR_CONTAINER_GUI")
    admin_port: int = _opt(9901, unsigned=True)
    drain_time: timedelta = _opt(timedelta(seconds=30))
    readiness_probe: ReadinessProbeConfig = _section(ReadinessProbeConfig)
    liveness_probe: LivenessProbeConfig = _section(LivenessProbeConfig)
    resources: ResourcesConfig = _section(ResourcesConfig)


@dataclass(frozen=True, slots=True)
class InitContainerConfig:
    image: str = _opt("kuma/kuma-init:latest")


@dataclass(frozen=True, slots=True)
class InjectorSection:
    control_plane: ControlPlaneConfig = _section(ControlPlaneConfig)
    sidecar_container: SidecarContainerConfig = _section(SidecarContainerConfig)
    init_container: InitContainerConfig = _section(InitContainerConfig)


@dataclass(frozen=True, slots=True)
class InjectorConfig:
    web_hook_server: WebHookServerConfig = _section(WebHookServerConfig)
    injector: InjectorSection = _section(InjectorSection)


_LEAVES = tuple(_leaves(InjectorConfig))
ENV_VARS: Mapping[str, str] = {leaf.env: leaf.key for leaf in _LEAVES}
"""Every env var the injector reads -> the YAML key path it sets."""


# --- loading ---


def _read_file(path: str) -> dict[str, Any]:
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
            _merge_node(root, InjectorConfig, "", out, loader)
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


def load_injector_config(
    path: str | None = None, env: Mapping[str, str] | None = None
) -> InjectorConfig:
    """Defaults, then the YAML file (if any), then KUMA_INJECTOR_* env vars, then `validate`.
    Every problem raises ConfigError naming the key (and the env var it came from)."""
    values = _read_file(path) if path is not None else {}
    environ = dict(os.environ if env is None else env)
    gid_alias, gid_kuma = GID_ENV_ALIAS
    if gid_alias in environ:
        environ[gid_kuma] = environ[gid_alias]
    for leaf in _LEAVES:
        if leaf.env in environ:
            where = f"{leaf.env} ({leaf.key})"
            target = values
            for attr in leaf.attrs[:-1]:
                target = target.setdefault(attr, {})
            target[leaf.attrs[-1]] = _from_text(environ[leaf.env], leaf.kind, leaf.meta, where)
    cfg: InjectorConfig = _build(InjectorConfig, values)
    validate(cfg)
    return cfg


# --- validation ---

_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def parse_quantity(text: str) -> Decimal | None:
    """A Kubernetes resource quantity (`50m`, `64Mi`, `1e3`, `0.5`) as a number; None if invalid."""
    m = _QUANTITY.match(text)
    if not m:
        return None
    suffix = m.group("suffix") or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(m.group("num")) * Decimal(10) ** int(suffix[1:])
    return Decimal(m.group("num")) * _SUFFIX[suffix]


def _problems(cfg: InjectorConfig) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    server = cfg.web_hook_server
    if not 1 <= server.port <= 65535:
        out.append(("webHookServer.port", "must be in the range [1, 65535]"))
    if not server.cert_dir:
        out.append(("webHookServer.certDir", "cannot be empty"))
    if not cfg.injector.control_plane.api_server.url:
        out.append(("injector.controlPlane.apiServer.url", "cannot be empty"))
    elif not re.match(r"^https?://[^/]+", cfg.injector.control_plane.api_server.url):
        out.append(("injector.controlPlane.apiServer.url", "must be an absolute http(s) URL"))
    sidecar = cfg.injector.sidecar_container
    base = "injector.sidecarContainer"
    if not sidecar.image:
        out.append((f"{base}.image", "cannot be empty"))
    for key in ("redirectPort", "adminPort"):
        value = getattr(sidecar, "redirect_port" if key == "redirectPort" else "admin_port")
        if not 1 <= value <= 65535:
            out.append((f"{base}.{key}", "must be in the range [1, 65535]"))
    if sidecar.drain_time <= timedelta(0):
        out.append((f"{base}.drainTime", "must be positive"))
    for probe_key, probe in (
        ("readinessProbe", sidecar.readiness_probe),
        ("livenessProbe", sidecar.liveness_probe),
    ):
        for name in probe.__slots__:
            if getattr(probe, name) < 1:
                camel = name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:])
                out.append((f"{base}.{probe_key}.{camel}", "must be >= 1"))
    parsed: dict[str, Decimal] = {}
    for kind, section in (
        ("requests", sidecar.resources.requests),
        ("limits", sidecar.resources.limits),
    ):
        for resource in ("cpu", "memory"):
            text = getattr(section, resource)
            key = f"{base}.resources.{kind}.{resource}"
            value = parse_quantity(text)
            if value is None or value < 0:
                out.append((key, f"{text!r} is not a valid quantity (e.g. 100m, 64Mi)"))
            else:
                parsed[f"{kind}.{resource}"] = value
    for resource in ("cpu", "memory"):
        request, limit = parsed.get(f"requests.{resource}"), parsed.get(f"limits.{resource}")
        if request is not None and limit is not None and request > limit:
            out.append(
                (f"{base}.resources.requests.{resource}", f"must be at most the {resource} limit")
            )
    if not cfg.injector.init_container.image:
        out.append(("injector.initContainer.image", "cannot be empty"))
    return out


def validate(cfg: InjectorConfig) -> None:
    """Raise ConfigError listing every broken rule, each named by its key and env var."""
    problems = _problems(cfg)
    if problems:
        env_of = {key: env for env, key in ENV_VARS.items()}
        parts = [
            f"{key}" + (f" ({env_of[key]})" if key in env_of else "") + f": {message}"
            for key, message in problems
        ]
        raise ConfigError("Invalid injector configuration: " + "; ".join(parts))
