"""The one table of resource types (spec §3.2). The API's routes, kumactl's commands and the
stores all read it instead of repeating type names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kuma.errors import ValidationError, Violation
from kuma.resources import dataplane, mesh, policies, proxytemplate
from kuma.resources.base import Spec, decode
from kuma.resources.insight import DataplaneInsightSpec
from kuma.resources.secret import SecretSpec


def _no_rules(spec: Any) -> list[Violation]:
    return []


@dataclass(frozen=True, kw_only=True)
class ResourceType:
    name: str  # the `type` field: "TrafficRoute"
    spec: type[Spec]
    validate: Callable[[Any], list[Violation]]
    plural: str | None  # REST collection under /meshes/{m}/ ("" for Mesh itself); None: hidden
    kumactl_get: str | None = None  # `kumactl get <this>`
    kumactl_delete: str | None = None  # `kumactl delete <this> NAME`
    k8s_kind: str | None = None
    k8s_plural: str | None = None
    k8s_cluster_scoped: bool = False
    # Label used in kumactl's "failed to list <X>" message (Kuma's own, spec §6.3).
    list_label: str = ""
    # `kubectl get dp`; none for Mesh, whose singular `mesh` is already short.
    k8s_short_names: tuple[str, ...] = ()
    description: str = ""  # what `kubectl explain <kind>` says
    # Its data is a `status` written by the control plane, not a `spec` (spec §11.5).
    is_status: bool = False
    # What Envoy is sent depends on it: a write of it is a reason to regenerate its mesh.
    configures_proxies: bool = True

    @property
    def is_mesh(self) -> bool:
        return self.name == MESH

    @property
    def exposed(self) -> bool:
        """Served by the API (Secret is internal)."""
        return self.plural is not None


MESH = "Mesh"
DATAPLANE = "Dataplane"
DATAPLANE_INSIGHT = "DataplaneInsight"
HEALTH_CHECK = "HealthCheck"
PROXY_TEMPLATE = "ProxyTemplate"
TRAFFIC_PERMISSION = "TrafficPermission"
TRAFFIC_LOG = "TrafficLog"
TRAFFIC_ROUTE = "TrafficRoute"
SECRET = "Secret"

TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        name=MESH,
        spec=mesh.MeshSpec,
        validate=mesh.validate,
        plural="",
        kumactl_get="meshes",
        kumactl_delete="mesh",
        k8s_kind="Mesh",
        k8s_plural="meshes",
        k8s_cluster_scoped=True,
        list_label="Meshes",
        description="A Kuma service mesh: mTLS, tracing, logging backends and metrics.",
    ),
    ResourceType(
        name=DATAPLANE,
        spec=dataplane.DataplaneSpec,
        validate=dataplane.validate,
        plural="dataplanes",
        kumactl_get="dataplanes",
        kumactl_delete="dataplane",
        k8s_kind="Dataplane",
        k8s_plural="dataplanes",
        list_label="Dataplanes",
        k8s_short_names=("dp",),
        description=(
            "The sidecar of one workload: its inbound (or gateway) and outbound interfaces and "
            "tags."
        ),
    ),
    ResourceType(
        name=DATAPLANE_INSIGHT,
        spec=DataplaneInsightSpec,
        validate=_no_rules,
        plural="dataplane-insights",
        k8s_kind="DataplaneInsight",
        k8s_plural="dataplaneinsights",
        k8s_short_names=("dpi",),
        description="The xDS subscriptions of one Dataplane, written by the control plane.",
        is_status=True,
        configures_proxies=False,
    ),
    ResourceType(
        name=HEALTH_CHECK,
        spec=policies.HealthCheckSpec,
        validate=policies.validate_health_check,
        plural="health-checks",
        kumactl_get="healthchecks",
        kumactl_delete="healthcheck",
        k8s_kind="HealthCheck",
        k8s_plural="healthchecks",
        list_label="HealthChecks",
        k8s_short_names=("hc",),
        description="Active and passive health checks of destinations, per source.",
    ),
    ResourceType(
        name=PROXY_TEMPLATE,
        spec=proxytemplate.ProxyTemplateSpec,
        validate=proxytemplate.validate,
        plural="proxytemplates",
        kumactl_get="proxytemplates",
        kumactl_delete="proxytemplate",
        k8s_kind="ProxyTemplate",
        k8s_plural="proxytemplates",
        list_label="ProxyTemplates",
        k8s_short_names=("pt",),
        description=(
            "Envoy configuration profiles and raw Envoy resources for the selected dataplanes."
        ),
    ),
    ResourceType(
        name=TRAFFIC_PERMISSION,
        spec=policies.TrafficPermissionSpec,
        validate=policies.validate_traffic_permission,
        plural="traffic-permissions",
        kumactl_get="traffic-permissions",
        kumactl_delete="traffic-permission",
        k8s_kind="TrafficPermission",
        k8s_plural="trafficpermissions",
        list_label="TrafficPermissions",
        k8s_short_names=("tp",),
        description="Which services may call which (enforced when mTLS is enabled).",
    ),
    ResourceType(
        name=TRAFFIC_LOG,
        spec=policies.TrafficLogSpec,
        validate=policies.validate_traffic_log,
        plural="traffic-logs",
        kumactl_get="traffic-logs",
        kumactl_delete="traffic-log",
        k8s_kind="TrafficLog",
        k8s_plural="trafficlogs",
        list_label="TrafficLog",
        k8s_short_names=("tl",),
        description="Access logs of traffic from sources to destinations.",
    ),
    ResourceType(
        name=TRAFFIC_ROUTE,
        spec=policies.TrafficRouteSpec,
        validate=policies.validate_traffic_route,
        plural="traffic-routes",
        kumactl_get="traffic-routes",
        kumactl_delete="traffic-route",
        k8s_kind="TrafficRoute",
        k8s_plural="trafficroutes",
        list_label="TrafficRoutes",
        k8s_short_names=("tr",),
        description="Weighted split of traffic from sources to destination subsets.",
    ),
    ResourceType(
        name=SECRET,
        spec=SecretSpec,
        validate=_no_rules,
        plural=None,
        k8s_kind="Secret",
        configures_proxies=False,
    ),
)

_BY_NAME = {t.name: t for t in TYPES}
_BY_PLURAL = {t.plural: t for t in TYPES if t.plural}


def get_type(name: str) -> ResourceType:
    """The type named `name`; ValidationError for anything else (bad input, not a crash)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValidationError(
            [Violation("type", f"unknown resource type {name!r}")], "Unknown resource type"
        ) from None


def by_plural(plural: str) -> ResourceType | None:
    return _BY_PLURAL.get(plural)


def by_kumactl_get(word: str) -> ResourceType | None:
    return next((t for t in TYPES if t.kumactl_get == word), None)


def by_kumactl_delete(word: str) -> ResourceType | None:
    return next((t for t in TYPES if t.kumactl_delete == word), None)


def decode_spec(type_name: str, data: Any) -> Any:
    """protobuf-JSON (already parsed) -> the type's spec; ValidationError on wrong shapes."""
    return decode(get_type(type_name).spec, {} if data is None else data)


def encode_spec(spec: Spec) -> Any:
    """The spec's protobuf-JSON: camelCase keys, default values omitted."""
    return spec.to_json()


def validate_spec(type_name: str, spec: Any) -> None:
    """Raise ValidationError with every violation of the type's rules (spec §3.4-§3.10)."""
    violations = get_type(type_name).validate(spec)
    if violations:
        raise ValidationError(violations)
