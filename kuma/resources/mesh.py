"""Mesh (spec §3.4): shape, defaults and validation."""

from __future__ import annotations

from pydantic import model_validator

from kuma.errors import Violation
from kuma.netutil import split_host_port
from kuma.resources import paths
from kuma.resources.base import Bool, Spec, UInt32
from kuma.resources.oneof import one_of

DEFAULT_PROMETHEUS_PORT = 5670
DEFAULT_PROMETHEUS_PATH = "/metrics"


class BuiltinCA(Spec):
    pass


class ProvidedCA(Spec):
    pass


class CertificateAuthority(Spec):
    builtin: BuiltinCA | None = None
    provided: ProvidedCA | None = None

    _one_of = model_validator(mode="after")(one_of("builtin", "provided"))

    @property
    def kind(self) -> str:
        """`builtin`, `provided`, or `unknown` when no type is set (kumactl's CA column)."""
        if self.builtin is not None:
            return "builtin"
        if self.provided is not None:
            return "provided"
        return "unknown"


class Mtls(Spec):
    # Field order is protobuf order: `ca` is written before `enabled` (spec §6.3).
    ca: CertificateAuthority | None = None
    enabled: Bool = False


class Zipkin(Spec):
    address: str = ""


class Tracing(Spec):
    zipkin: Zipkin | None = None


class FileBackend(Spec):
    path: str = ""


class TcpBackend(Spec):
    address: str = ""


class LoggingBackend(Spec):
    name: str = ""
    format: str = ""
    file: FileBackend | None = None
    tcp: TcpBackend | None = None

    _one_of = model_validator(mode="after")(one_of("file", "tcp"))


class Logging(Spec):
    default_backend: str = ""
    backends: list[LoggingBackend] = []


class Prometheus(Spec):
    port: UInt32 = 0  # a JSON number or a quoted one ("5670"); not a boolean
    path: str = ""


class Metrics(Spec):
    prometheus: Prometheus | None = None


class MeshSpec(Spec):
    mtls: Mtls | None = None
    tracing: Tracing | None = None
    logging: Logging | None = None
    metrics: Metrics | None = None

    @property
    def mtls_enabled(self) -> bool:
        return self.mtls is not None and self.mtls.enabled

    @property
    def ca_kind(self) -> str:
        if self.mtls is None or self.mtls.ca is None:
            return "unknown"
        return self.mtls.ca.kind

    def backend(self, name: str) -> LoggingBackend | None:
        """The named logging backend; an empty name means the mesh's default backend."""
        if self.logging is None:
            return None
        name = name or self.logging.default_backend
        return next((b for b in self.logging.backends if b.name == name), None)


def apply_defaults(spec: MeshSpec) -> MeshSpec:
    """Mesh defaults of spec §3.4, applied on every create and update."""
    mtls = spec.mtls or Mtls()
    ca = mtls.ca or CertificateAuthority()
    if ca.builtin is None and ca.provided is None:
        ca = CertificateAuthority(builtin=BuiltinCA())
    update: dict[str, object] = {"mtls": mtls.model_copy(update={"ca": ca})}
    if spec.metrics is not None and spec.metrics.prometheus is not None:
        prom = spec.metrics.prometheus
        prom = prom.model_copy(
            update={
                "port": prom.port or DEFAULT_PROMETHEUS_PORT,
                "path": prom.path or DEFAULT_PROMETHEUS_PATH,
            }
        )
        update["metrics"] = spec.metrics.model_copy(update={"prometheus": prom})
    return spec.model_copy(update=update)


def _valid_host_port(address: str) -> bool:
    """Kuma's check: Go's net.SplitHostPort succeeds, with a host and a port."""
    try:
        host, port = split_host_port(address)
    except ValueError:
        return False
    return bool(host and port)


def validate(spec: MeshSpec) -> list[Violation]:
    out: list[Violation] = []
    if spec.mtls is not None and spec.mtls.enabled and spec.mtls.ca is None:
        out.append(Violation("mtls.ca", "has to be set when mTLS is enabled"))
    logging = spec.logging or Logging()
    seen: set[str] = set()
    for i, backend in enumerate(logging.backends):
        path = paths.index("logging.backends", i)
        if not backend.name:
            out.append(Violation(paths.field(path, "name"), "cannot be empty"))
        if backend.file is not None and not backend.file.path:
            out.append(Violation(paths.field(path, "file.path"), "cannot be empty"))
        if backend.tcp is not None:
            address_path = paths.field(path, "tcp.address")
            if not backend.tcp.address:
                out.append(Violation(address_path, "cannot be empty"))
            elif not _valid_host_port(backend.tcp.address):
                out.append(Violation(address_path, "has to be in format of HOST:PORT"))
        if backend.name and backend.name in seen:
            out.append(
                Violation(
                    paths.field(path, "name"),
                    f'"{backend.name}" name is already used for another backend',
                )
            )
        seen.add(backend.name)
    if logging.default_backend and logging.default_backend not in seen:
        out.append(
            Violation(
                "logging.defaultBackend",
                "has to be set to one of the logging backend in mesh",
            )
        )
    return out
