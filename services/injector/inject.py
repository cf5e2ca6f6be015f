"""Injection rules and patch building (spec §11.1, §11.2): pure functions, no Flask, no I/O.

- `decide(pod, namespace_labels)`: inject or not, and why.
- `mesh_name(pod)`: the Mesh the Pod joins (`kuma.io/mesh`, default `default`).
- `build_patch(pod, mesh, cfg)`: the JSON patch (RFC 6902) that adds the `kuma-sidecar` container,
  the `kuma-init` init container and the annotations. Everything is checked before any operation
  is produced, so a bad Pod gets an error and never half a patch.

Rules: a Pod is injected when its namespace is labelled `kuma.io/sidecar-injection: enabled` or the
Pod itself is annotated so; a Pod annotation `disabled` opts out (it wins over the namespace
label); a Pod that already carries the sidecar (by container name, init container name or the
`kuma.io/sidecar-injected: "true"` annotation) is left alone, so re-admission never adds a second
sidecar. Annotation values are compared case-insensitively (`Enabled` works too).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kuma.durations import format_go_duration
from kuma.errors import ValidationError, Violation
from services.injector.config import InjectorSection

Pod = dict[str, Any]
Patch = list[dict[str, Any]]

SIDECAR_NAME = "kuma-sidecar"
INIT_NAME = "kuma-init"
DEFAULT_MESH = "default"
SERVICE_ACCOUNT_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_TOKEN_PATH = f"{SERVICE_ACCOUNT_TOKEN_DIR}/token"

INJECTION = "kuma.io/sidecar-injection"
INJECTED = "kuma.io/sidecar-injected"
MESH = "kuma.io/mesh"
GATEWAY = "kuma.io/gateway"
TRANSPARENT_PROXYING = "kuma.io/transparent-proxying"
TRANSPARENT_PROXYING_PORT = "kuma.io/transparent-proxying-port"
METRICS_PORT = "prometheus.metrics.kuma.io/port"
METRICS_PATH = "prometheus.metrics.kuma.io/path"
PROMETHEUS_SCRAPE = "prometheus.io/scrape"
PROMETHEUS_PATH = "prometheus.io/path"
PROMETHEUS_PORT = "prometheus.io/port"
ENABLED, DISABLED = "enabled", "disabled"


@dataclass(frozen=True, slots=True)
class MeshInfo:
    """What the injector needs of a Mesh: its name and its Prometheus endpoint, if any."""

    name: str
    prometheus_port: int | None = None
    prometheus_path: str = "/metrics"


@dataclass(frozen=True, slots=True)
class Decision:
    inject: bool
    reason: str


def _meta(pod: Pod) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, dict) else {}


def pod_annotations(pod: Pod) -> Mapping[str, Any]:
    value = _meta(pod).get("annotations")
    return value if isinstance(value, dict) else {}


def _flag(value: Any) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def already_injected(pod: Pod) -> bool:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    names = {
        c.get("name")
        for key in ("containers", "initContainers")
        for c in (spec.get(key) or [])
        if isinstance(c, dict)
    }
    return (
        SIDECAR_NAME in names
        or INIT_NAME in names
        or _flag(pod_annotations(pod).get(INJECTED)) == "true"
    )


def decide(pod: Pod, namespace_labels: Mapping[str, str]) -> Decision:
    pod_flag = _flag(pod_annotations(pod).get(INJECTION))
    ns_flag = _flag(namespace_labels.get(INJECTION))
    if pod_flag == DISABLED:
        return Decision(False, f"pod annotation {INJECTION}: disabled")
    if already_injected(pod):
        return Decision(False, "pod already has the Kuma sidecar")
    if pod_flag == ENABLED:
        return Decision(True, f"pod annotation {INJECTION}: enabled")
    if ns_flag == ENABLED:
        return Decision(True, f"namespace label {INJECTION}: enabled")
    return Decision(False, "injection is not enabled for the pod or its namespace")


def mesh_name(pod: Pod) -> str:
    value = pod_annotations(pod).get(MESH)
    return value.strip() if isinstance(value, str) and value.strip() else DEFAULT_MESH


def is_gateway(pod: Pod) -> bool:
    return _flag(pod_annotations(pod).get(GATEWAY)) == ENABLED


def check_pod(pod: Any) -> list[Violation]:
    """The shape the patch relies on; violations name Pod field paths."""
    if not isinstance(pod, dict):
        return [Violation("object", "must be a Pod object")]
    out: list[Violation] = []
    if pod.get("kind", "Pod") != "Pod":
        out.append(Violation("kind", f"must be Pod, got {pod.get('kind')!r}"))
    meta = pod.get("metadata", {})
    if not isinstance(meta, dict):
        out.append(Violation("metadata", "must be an object"))
    elif not isinstance(meta.get("annotations", {}), dict):
        out.append(Violation("metadata.annotations", "must be an object"))
    else:
        for key, value in (meta.get("annotations") or {}).items():
            if not isinstance(value, str):
                out.append(Violation(f'metadata.annotations["{key}"]', "must be a string"))
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return [*out, Violation("spec", "must be an object")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        out.append(Violation("spec.containers", "must be a non-empty list"))
    for key in ("containers", "initContainers"):
        items = spec.get(key)
        if key == "initContainers" and items is None:
            continue
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            if not isinstance(c, dict):
                out.append(Violation(f"spec.{key}[{i}]", "must be an object"))
    if not isinstance(spec.get("initContainers", []) or [], list):
        out.append(Violation("spec.initContainers", "must be a list"))
    for key in (METRICS_PORT,):
        value = pod_annotations(pod).get(key) if isinstance(meta, dict) else None
        if value is not None and parse_port(value) is None:
            out.append(Violation(f'metadata.annotations["{key}"]', "must be a port (1-65535)"))
    return out


def parse_port(value: Any) -> int | None:
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 1 <= port <= 65535 else None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _fieldref(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _probe(command: list[str], values: Any, success_threshold: int = 1) -> dict[str, Any]:
    return {
        "exec": {"command": command},
        "initialDelaySeconds": values.initial_delay_seconds,
        "timeoutSeconds": values.timeout_seconds,
        "periodSeconds": values.period_seconds,
        "successThreshold": success_threshold,
        "failureThreshold": values.failure_threshold,
    }


def sidecar_container(pod: Pod, mesh: MeshInfo, cfg: InjectorSection) -> dict[str, Any]:
    """The `kuma-sidecar` container: `kuma-dp run`, configured by the env vars kuma-dp reads."""
    s = cfg.sidecar_container
    admin = f"http://127.0.0.1:{s.admin_port}"
    container: dict[str, Any] = {
        "name": SIDECAR_NAME,
        "image": s.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["kuma-dp"],
        "args": ["run", "--log-level=info"],
        "env": [
            _fieldref("POD_NAME", "metadata.name"),
            _fieldref("POD_NAMESPACE", "metadata.namespace"),
            _fieldref("INSTANCE_IP", "status.podIP"),
            {
                "name": "KUMA_CONTROL_PLANE_API_SERVER_URL",
                "value": cfg.control_plane.api_server.url,
            },
            {"name": "KUMA_DATAPLANE_MESH", "value": mesh.name},
            {"name": "KUMA_DATAPLANE_NAME", "value": "$(POD_NAME).$(POD_NAMESPACE)"},
            {"name": "KUMA_DATAPLANE_ADMIN_PORT", "value": str(s.admin_port)},
            {"name": "KUMA_DATAPLANE_DRAIN_TIME", "value": format_go_duration(s.drain_time)},
            {"name": "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH", "value": SERVICE_ACCOUNT_TOKEN_PATH},
        ],
        "securityContext": {"runAsUser": s.uid, "runAsGroup": s.gid},
        "livenessProbe": _probe(["wget", "-qO-", admin], s.liveness_probe),
        "readinessProbe": _probe(
            ["wget", "-qO-", f"{admin}/ready"],
            s.readiness_probe,
            s.readiness_probe.success_threshold,
        ),
        "resources": {
            "requests": {"cpu": s.resources.requests.cpu, "memory": s.resources.requests.memory},
            "limits": {"cpu": s.resources.limits.cpu, "memory": s.resources.limits.memory},
        },
    }
    token_mount = _token_mount(pod)
    if token_mount is not None:
        container["volumeMounts"] = [token_mount]
    return container


def _token_mount(pod: Pod) -> dict[str, Any] | None:
    """The first container's service-account token mount (added by the ServiceAccount admission
    plugin before webhooks run), so that kuma-dp can read the token too."""
    first = pod["spec"]["containers"][0]
    for mount in first.get("volumeMounts") or []:
        if isinstance(mount, dict) and mount.get("mountPath") == SERVICE_ACCOUNT_TOKEN_DIR:
            return copy.deepcopy(mount)
    return None


def init_container(pod: Pod, cfg: InjectorSection) -> dict[str, Any]:
    """`kuma-init`: iptables REDIRECT of all inbound (none for a gateway) and outbound TCP to the
    sidecar's redirect port, excluding the sidecar's own uid/gid (istio-iptables arguments)."""
    s = cfg.sidecar_container
    inbound = "" if is_gateway(pod) else "*"
    return {
        "name": INIT_NAME,
        "image": cfg.init_container.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "-p",
            str(s.redirect_port),
            "-u",
            str(s.uid),
            "-g",
            str(s.gid),
            "-m",
            "REDIRECT",
            "-i",
            "*",
            "-b",
            inbound,
        ],  # fmt: skip
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
        "resources": {
            "limits": {"cpu": "100m", "memory": "50M"},
            "requests": {"cpu": "10m", "memory": "10M"},
        },
    }


def new_annotations(pod: Pod, mesh: MeshInfo, cfg: InjectorSection) -> dict[str, str]:
    """The annotations the injector sets (existing values are overwritten)."""
    out = {
        MESH: mesh.name,
        INJECTED: "true",
        TRANSPARENT_PROXYING: ENABLED,
        TRANSPARENT_PROXYING_PORT: str(cfg.sidecar_container.redirect_port),
    }
    current = pod_annotations(pod)
    has_prometheus = any(
        k in current for k in (PROMETHEUS_SCRAPE, PROMETHEUS_PATH, PROMETHEUS_PORT)
    )
    if mesh.prometheus_port is not None and not has_prometheus:
        port = parse_port(current.get(METRICS_PORT)) if METRICS_PORT in current else None
        path = current.get(METRICS_PATH) or mesh.prometheus_path
        out[PROMETHEUS_SCRAPE] = "true"
        out[PROMETHEUS_PATH] = path
        out[PROMETHEUS_PORT] = str(port or mesh.prometheus_port)
    return out


def build_patch(pod: Pod, mesh: MeshInfo, cfg: InjectorSection) -> Patch:
    """The JSON patch injecting `pod` into `mesh`. Raises ValidationError for a malformed Pod
    before producing anything; the caller decides (with `decide`) whether to call this."""
    violations = check_pod(pod)
    if violations:
        raise ValidationError(violations)
    ops: Patch = []
    meta = pod.get("metadata")
    wanted = new_annotations(pod, mesh, cfg)
    if meta is None:
        ops.append({"op": "add", "path": "/metadata", "value": {"annotations": wanted}})
    elif meta.get("annotations") is None:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": wanted})
    else:
        for key, value in wanted.items():
            ops.append(
                {"op": "add", "path": f"/metadata/annotations/{_escape(key)}", "value": value}
            )
    ops.append(
        {"op": "add", "path": "/spec/containers/-", "value": sidecar_container(pod, mesh, cfg)}
    )
    init = init_container(pod, cfg)
    if pod["spec"].get("initContainers"):
        ops.append({"op": "add", "path": "/spec/initContainers/-", "value": init})
    else:
        ops.append({"op": "add", "path": "/spec/initContainers", "value": [init]})
    return ops
