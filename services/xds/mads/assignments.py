"""One MonitoringAssignment per Dataplane of a Mesh with `metrics.prometheus` (spec §12.3), as
Kuma 0.3.2's `MonitoringAssignmentsGenerator` made it:

    name: /meshes/default/dataplanes/backend-01
    targets:
    - labels: {__address__: "192.168.0.1:5670"}   # first inbound IP ("" for a gateway) : port
    labels:
      __scheme__: http
      __metrics_path__: /metrics
      job: backend                 # the identifying service
      instance: backend-01
      mesh: default
      dataplane: backend-01
      service: backend             # every tag: its first value (name sanitised for Prometheus)
      services: ",backend,"        # every tag + "s": all its values

The address is a label of the target and everything else a label of the assignment: the shape
Prometheus's file_sd wants (`targets: [address]` plus common labels), so the client only
reshapes."""

from __future__ import annotations

import re

from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.mesh import MeshSpec
from services.xds.mads.proto import mads_pb2

TYPE_URL = "type.googleapis.com/kuma.observability.v1alpha1.MonitoringAssignment"

# Prometheus's own label names (prometheus/common/model).
ADDRESS_LABEL = "__address__"
SCHEME_LABEL = "__scheme__"
METRICS_PATH_LABEL = "__metrics_path__"
JOB_LABEL = "job"
INSTANCE_LABEL = "instance"
# Kuma's.
MESH_LABEL = "mesh"
DATAPLANE_LABEL = "dataplane"

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """Prometheus's `strutil.SanitizeLabelName`: every character outside [a-zA-Z0-9_] -> `_`."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def assignment_name(mesh: str, name: str) -> str:
    return f"/meshes/{mesh}/dataplanes/{name}"


def join_host_port(host: str, port: int) -> str:
    """Go's net.JoinHostPort: brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dataplane_labels(mesh: str, name: str, spec: DataplaneSpec, path: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    # User tags first, in sorted key order: a tag named like another's plural (`services`)
    # overrides the generated one, as in Kuma.
    for key, values in spec.tags().items():
        labels[sanitize_label_name(key)] = values[0] if values else ""
        labels[sanitize_label_name(f"{key}s")] = "," + ",".join(values) + ","
    # Then the mandatory labels, on top.
    labels[SCHEME_LABEL] = "http"
    labels[METRICS_PATH_LABEL] = path
    labels[JOB_LABEL] = spec.service()
    labels[INSTANCE_LABEL] = name
    labels[MESH_LABEL] = mesh
    labels[DATAPLANE_LABEL] = name
    return labels


def build(
    mesh: str, mesh_spec: MeshSpec, name: str, spec: DataplaneSpec
) -> mads_pb2.MonitoringAssignment | None:
    """The assignment of Dataplane `name` of `mesh`; None when the Mesh has no Prometheus."""
    endpoint = spec.prometheus_endpoint(mesh_spec)
    if endpoint is None:
        return None
    port, path = endpoint
    return mads_pb2.MonitoringAssignment(
        name=assignment_name(mesh, name),
        targets=[
            mads_pb2.MonitoringAssignment.Target(
                labels={ADDRESS_LABEL: join_host_port(spec.ip(), port)}
            )
        ],
        labels=dataplane_labels(mesh, name, spec, path),
    )
