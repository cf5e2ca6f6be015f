"""Pod -> Dataplane (spec §11.3): a pure function for the Kubernetes Pod controller.

`pod_to_dataplane(pod, services, dataplanes)` builds the Dataplane of an injected Pod from the Pod,
the Kubernetes Services (any namespace; those of the Pod's namespace give its inbounds, the others
resolve outbound ClusterIPs) and the other Dataplanes. `to_custom_resource` gives the
`kuma.io/v1alpha1` object the controller writes, owned by the Pod (spec §11.5).

Rules (Kuma 0.3.2 unless noted):
- Only Pods annotated `kuma.io/sidecar-injected: "true"` with a Pod IP; anything else -> None.
- Mesh: `kuma.io/mesh`, default `default`. Core name `<pod>.<namespace>` (spec §11.5).
- `transparentProxying.redirectPort` from `kuma.io/transparent-proxying-port` when
  `kuma.io/transparent-proxying: enabled`.
- Inbound: every Service of the Pod's namespace whose selector matches the Pod labels; every
  Service port whose protocol is TCP (or unset); the container port is found by name when
  `targetPort` is a string, else the number is used (`targetPort` unset means `port`). One
  inbound `<podIP>:<cport>:<cport>` with the Pod labels plus `service: <svc>.<ns>.svc:<port>`
  (which overrides a Pod label `service`). Unmatched ports are skipped.
- Gateway (`kuma.io/gateway: enabled`): no inbounds; `gateway.tags` = the first inbound's tags.
- Outbound: one per distinct `service` tag of the *other* Dataplanes of the Mesh, sorted; the tag
  must be `<name>.<ns>.svc:<port>` and the Service must exist with a ClusterIP; otherwise skipped.

Deliberate differences from 0.3.x (sane over quirky, DESIGN.md):
- A Service without a selector (or with an empty one) selects no Pods, as in Kubernetes (Kuma
  0.3 matched every Pod of the namespace).
- A numeric `targetPort` need not be declared by a container (Kubernetes routes to it anyway;
  Kuma fixed this in 0.4.0). A declared one must have the Service port's protocol.
- Headless Services (`clusterIP: None`) give no outbound (there is no address to listen on).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kuma.resources.base import Resource
from kuma.resources.dataplane import (
    DataplaneSpec,
    Gateway,
    Inbound,
    Networking,
    Outbound,
    TransparentProxying,
)
from kuma.resources.registry import DATAPLANE, encode_spec
from kuma.resources.selectors import SERVICE_TAG
from services.injector import inject

K8sObject = Mapping[str, Any]
_SERVICE_TAG = re.compile(
    r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc:(?P<port>\d{1,5})$"
)


def _meta(obj: K8sObject) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: K8sObject) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def core_name(name: str, namespace: str) -> str:
    return f"{name}.{namespace}"


def service_tag(service_name: str, namespace: str, port: int) -> str:
    return f"{service_name}.{namespace}.svc:{port}"


def selects(service: K8sObject, pod_labels: Mapping[str, str]) -> bool:
    selector = _spec(service).get("selector") or {}
    if not selector:
        return False
    return all(pod_labels.get(k) == v for k, v in selector.items())


def _container_port(pod: K8sObject, target: Any, protocol: str) -> int | None:
    ports = [
        p
        for c in (_spec(pod).get("containers") or [])
        for p in (c.get("ports") or [])
        if isinstance(p, Mapping)
    ]
    if isinstance(target, str) and not target.isdigit():
        for p in ports:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
        return None
    number = int(target)
    for p in ports:
        if p.get("containerPort") == number and (p.get("protocol") or "TCP") != protocol:
            return None  # declared, but for another protocol
    return number if 1 <= number <= 65535 else None


def inbounds(pod: K8sObject, services: Iterable[K8sObject]) -> list[Inbound]:
    meta = _meta(pod)
    namespace = meta.get("namespace", "")
    labels = dict(meta.get("labels") or {})
    pod_ip = (pod.get("status") or {}).get("podIP", "")
    out: list[Inbound] = []
    for svc in services:
        svc_meta = _meta(svc)
        if svc_meta.get("namespace", namespace) != namespace or not selects(svc, labels):
            continue
        for port in _spec(svc).get("ports") or []:
            protocol = port.get("protocol") or "TCP"
            if protocol != "TCP":
                continue
            target = port.get("targetPort", port.get("port"))
            cport = _container_port(pod, target, protocol)
            if cport is None:
                continue
            tags = {**labels, SERVICE_TAG: service_tag(svc_meta["name"], namespace, port["port"])}
            out.append(Inbound(interface=f"{pod_ip}:{cport}:{cport}", tags=tags))
    return out


def _service_tags(dataplanes: Iterable[Resource]) -> set[str]:
    tags: set[str] = set()
    for dp in dataplanes:
        for tag_set in dp.spec.tag_sets():
            if tag_set.get(SERVICE_TAG):
                tags.add(tag_set[SERVICE_TAG])
    return tags


def outbounds(services: Iterable[K8sObject], others: Iterable[Resource]) -> list[Outbound]:
    by_key = {(_meta(s).get("namespace", ""), _meta(s).get("name", "")): s for s in services}
    out: list[Outbound] = []
    for tag in sorted(_service_tags(others)):
        m = _SERVICE_TAG.match(tag)
        if not m:
            continue
        svc = by_key.get((m.group("ns"), m.group("name")))
        cluster_ip = _spec(svc).get("clusterIP", "") if svc is not None else ""
        port = int(m.group("port"))
        if not cluster_ip or cluster_ip == "None" or not 1 <= port <= 65535:
            continue
        out.append(Outbound(interface=f"{cluster_ip}:{port}", service=tag))
    return out


def pod_to_dataplane(
    pod: K8sObject, services: Iterable[K8sObject], dataplanes: Iterable[Resource]
) -> Resource | None:
    """The Dataplane of `pod`, or None when the Pod is not injected or has no IP yet."""
    annotations = inject.pod_annotations(dict(pod))
    pod_ip = (pod.get("status") or {}).get("podIP")
    if str(annotations.get(inject.INJECTED, "")).lower() != "true" or not pod_ip:
        return None
    meta = _meta(pod)
    name = core_name(meta.get("name", ""), meta.get("namespace", ""))
    mesh = inject.mesh_name(dict(pod))
    services = list(services)
    others = [
        dp for dp in dataplanes if dp.type == DATAPLANE and dp.mesh == mesh and dp.name != name
    ]
    found = inbounds(pod, services)
    gateway = None
    if inject.is_gateway(dict(pod)):
        gateway = Gateway(tags=found[0].tags if found else dict(meta.get("labels") or {}))
        found = []
    tp = None
    if str(annotations.get(inject.TRANSPARENT_PROXYING, "")).lower() == inject.ENABLED:
        port = inject.parse_port(annotations.get(inject.TRANSPARENT_PROXYING_PORT))
        if port is not None:
            tp = TransparentProxying(redirect_port=port)
    spec = DataplaneSpec(
        networking=Networking(
            inbound=found,
            gateway=gateway,
            outbound=outbounds(services, others),
            transparent_proxying=tp,
        )
    )
    return Resource(type=DATAPLANE, mesh=mesh, name=name, spec=spec)


def to_custom_resource(dataplane: Resource, pod: K8sObject) -> dict[str, Any]:
    """The `kuma.io/v1alpha1` Dataplane object in the Pod's namespace, owned by the Pod."""
    meta = _meta(pod)
    owner = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "Dataplane",
        "mesh": dataplane.mesh,
        "metadata": {
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "ownerReferences": [owner],
        },
        "spec": encode_spec(dataplane.spec),
    }
