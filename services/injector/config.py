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

from kuma.config import env_vars, option, read_settings, section
from kuma.errors import ConfigError

CONFIG_FILE_ENV = "KUMA_INJECTOR_CONFIG_FILE"
DEFAULT_CERT_DIR = "/var/run/secrets/kuma.io/kuma-injector/tls-cert"
GID_ENV_ALIAS = ("KUMA_INJECTOR_SIDECAR_CONTAINER_GID", "KUMA_INJECTOR_SIDECAR_CONTAINER_GUI")


@dataclass(frozen=True, slots=True)
class WebHookServerConfig:
    address: str = option("", env="KUMA_INJECTOR_WEBHOOK_SERVER_ADDRESS")
    port: int = option(8443, env="KUMA_INJECTOR_WEBHOOK_SERVER_PORT", unsigned=True)
    cert_dir: str = option(DEFAULT_CERT_DIR, env="KUMA_INJECTOR_WEBHOOK_SERVER_CERT_DIR")
    # gunicorn's worker processes (0: one per CPU) and threads per worker: admission requests
    # are small and rare. The env vars are the names these knobs had before they were keys.
    workers: int = option(2, env="KUMA_INJECTOR_WORKERS", unsigned=True)
    threads: int = option(4, env="KUMA_INJECTOR_THREADS", unsigned=True)

    @property
    def cert_file(self) -> str:
        return os.path.join(self.cert_dir, "tls.crt")

    @property
    def key_file(self) -> str:
        return os.path.join(self.cert_dir, "tls.key")


@dataclass(frozen=True, slots=True)
class ApiServerConfig:
    url: str = option("http://kuma-control-plane.kuma-system:5681")


@dataclass(frozen=True, slots=True)
class ControlPlaneConfig:
    api_server: ApiServerConfig = section(ApiServerConfig)


@dataclass(frozen=True, slots=True)
class ReadinessProbeConfig:
    initial_delay_seconds: int = option(1)
    timeout_seconds: int = option(3)
    period_seconds: int = option(5)
    success_threshold: int = option(1)
    failure_threshold: int = option(12)


@dataclass(frozen=True, slots=True)
class LivenessProbeConfig:
    initial_delay_seconds: int = option(60)
    timeout_seconds: int = option(3)
    period_seconds: int = option(5)
    failure_threshold: int = option(12)


@dataclass(frozen=True, slots=True)
class RequestsConfig:
    cpu: str = option("50m")
    memory: str = option("64Mi")


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    cpu: str = option("1000m")
    memory: str = option("512Mi")


@dataclass(frozen=True, slots=True)
class ResourcesConfig:
    requests: RequestsConfig = section(RequestsConfig)
    limits: LimitsConfig = section(LimitsConfig)


@dataclass(frozen=True, slots=True)
class SidecarContainerConfig:
    image: str = option("kuma/kuma-dp:latest")
    redirect_port: int = option(15001, unsigned=True)
    uid: int = option(5678, unsigned=True)
    gid: int = option(5678, unsigned=True, env="KUMA_INJECTOR_SIDECAR_CONTAINER_GUI")
    admin_port: int = option(9901, unsigned=True)
    drain_time: timedelta = option(timedelta(seconds=30))
    readiness_probe: ReadinessProbeConfig = section(ReadinessProbeConfig)
    liveness_probe: LivenessProbeConfig = section(LivenessProbeConfig)
    resources: ResourcesConfig = section(ResourcesConfig)


@dataclass(frozen=True, slots=True)
class InitContainerConfig:
    image: str = option("kuma/kuma-init:latest")


@dataclass(frozen=True, slots=True)
class InjectorSection:
    control_plane: ControlPlaneConfig = section(ControlPlaneConfig)
    sidecar_container: SidecarContainerConfig = section(SidecarContainerConfig)
    init_container: InitContainerConfig = section(InitContainerConfig)


@dataclass(frozen=True, slots=True)
class InjectorConfig:
    web_hook_server: WebHookServerConfig = section(WebHookServerConfig)
    injector: InjectorSection = section(InjectorSection)


ENV_VARS: Mapping[str, str] = env_vars(InjectorConfig)
"""Every env var the injector reads -> the YAML key path it sets."""


# --- loading ---


def load_injector_config(
    path: str | None = None, env: Mapping[str, str] | None = None
) -> InjectorConfig:
    """Defaults, then the YAML file (if any), then KUMA_INJECTOR_* env vars, then `validate`.
    Every problem raises ConfigError naming the key (and the env var it came from)."""
    environ = dict(os.environ if env is None else env)
    gid_alias, gid_kuma = GID_ENV_ALIAS
    if gid_alias in environ:
        environ[gid_kuma] = environ[gid_alias]
    cfg = read_settings(InjectorConfig, path, environ)
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
    if server.threads < 1:
        out.append(("webHookServer.threads", "must be at least 1"))
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
    for kind, amounts in (
        ("requests", sidecar.resources.requests),
        ("limits", sidecar.resources.limits),
    ):
        for resource in ("cpu", "memory"):
            text = getattr(amounts, resource)
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
