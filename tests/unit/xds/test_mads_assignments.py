"""The monitoring assignment of a Dataplane (spec §12.3), case by case as Kuma 0.3.2's
generator tests have them, and its reshaping into Prometheus file_sd target groups."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from cli.kuma_prometheus_sd.file_sd import TargetGroup, convert, render
from kuma.resources.base import Resource
from kuma.resources.mesh import apply_defaults
from kuma.resources.wire import from_json
from services.xds.mads import assignments


def _mesh(name: str = "demo", metrics: dict[str, Any] | None = None) -> Resource:
    doc: dict[str, Any] = {"type": "Mesh", "name": name}
    if metrics is not None:
        doc["metrics"] = metrics
    res = from_json(doc)
    return Resource(res.type, res.mesh, res.name, apply_defaults(res.spec))


def _dataplane(name: str, networking: dict[str, Any], **extra: Any) -> Resource:
    return from_json(
        {"type": "Dataplane", "mesh": "demo", "name": name, "networking": networking, **extra}
    )


def build(mesh: Resource, dataplane: Resource) -> dict[str, Any] | None:
    assignment = assignments.build(mesh.name, mesh.spec, dataplane.name, dataplane.spec)
    return None if assignment is None else json_format.MessageToDict(assignment)


BACKEND = {
    "inbound": [
        {
            "interface": "192.168.0.1:80:8080",
            "tags": {"service": "backend", "env": "prod", "version": "v1"},
        },
        {
            "interface": "192.168.0.2:443:8443",
            "tags": {"service": "backend-https", "env": "prod", "version": "v2"},
        },
    ]
}
NON_STANDARD = {"prometheus": {"port": 1234, "path": "/non-standard-path"}}


def test_a_mesh_without_prometheus_has_no_assignments():
    dataplane = _dataplane(
        "backend-01",
        {"inbound": [{"interface": "192.168.0.1:80:8080", "tags": {"service": "backend"}}]},
        metrics={"prometheus": {"port": 8765, "path": "/even-more-non-standard-path"}},
    )
    assert build(_mesh(), dataplane) is None


def test_multiple_inbounds_first_ip_and_every_tag_value():
    assert build(_mesh(metrics=NON_STANDARD), _dataplane("backend-01", BACKEND)) == {
        "name": "/meshes/demo/dataplanes/backend-01",
        "targets": [{"labels": {"__address__": "192.168.0.1:1234"}}],
        "labels": {
            "__scheme__": "http",
            "__metrics_path__": "/non-standard-path",
            "job": "backend",
            "instance": "backend-01",
            "mesh": "demo",
            "dataplane": "backend-01",
            "env": "prod",
            "envs": ",prod,",
            "service": "backend",
            "services": ",backend,backend-https,",
            "version": "v1",
            "versions": ",v1,v2,",
        },
    }


def test_a_gateway_has_no_ip_and_its_gateway_tags():
    gateway = _dataplane(
        "gateway-01", {"gateway": {"tags": {"service": "gateway", "region": "eu"}}}
    )
    assert build(_mesh(metrics=NON_STANDARD), gateway) == {
        "name": "/meshes/demo/dataplanes/gateway-01",
        "targets": [{"labels": {"__address__": ":1234"}}],
        "labels": {
            "__scheme__": "http",
            "__metrics_path__": "/non-standard-path",
            "job": "gateway",
            "instance": "gateway-01",
            "mesh": "demo",
            "dataplane": "gateway-01",
            "region": "eu",
            "regions": ",eu,",
            "service": "gateway",
            "services": ",gateway,",
        },
    }


def test_mesh_defaults_and_dataplane_override_field_by_field():
    mesh = _mesh(metrics={"prometheus": {}})
    one = {"inbound": [{"interface": "10.0.0.1:80:8080", "tags": {"service": "web"}}]}
    default = build(mesh, _dataplane("web-1", one))
    assert default is not None
    assert default["targets"] == [{"labels": {"__address__": "10.0.0.1:5670"}}]
    assert default["labels"]["__metrics_path__"] == "/metrics"
    port_only = build(mesh, _dataplane("web-1", one, metrics={"prometheus": {"port": 9999}}))
    assert port_only is not None
    assert port_only["targets"] == [{"labels": {"__address__": "10.0.0.1:9999"}}]
    assert port_only["labels"]["__metrics_path__"] == "/metrics"
    path_only = build(mesh, _dataplane("web-1", one, metrics={"prometheus": {"path": "/s"}}))
    assert path_only is not None
    assert path_only["targets"] == [{"labels": {"__address__": "10.0.0.1:5670"}}]
    assert path_only["labels"]["__metrics_path__"] == "/s"


def test_a_user_plural_tag_overrides_the_generated_one_and_names_are_sanitised():
    dataplane = _dataplane(
        "backend-01",
        {
            "inbound": [
                {
                    "interface": "192.168.0.1:80:8080",
                    "tags": {"service": "backend", "services": "user", "kuma.io/zone": "z-1"},
                }
            ]
        },
    )
    got = build(_mesh(metrics=NON_STANDARD), dataplane)
    assert got is not None
    labels = got["labels"]
    # `services` comes after `service` in key order: the user's value wins, as in Kuma
    assert labels["services"] == "user"
    assert labels["servicess"] == ",user,"
    assert labels["kuma_io_zone"] == "z-1"
    assert labels["kuma_io_zones"] == ",z-1,"


def test_mandatory_labels_win_over_tags_of_the_same_name():
    dataplane = _dataplane(
        "web-1",
        {
            "inbound": [
                {
                    "interface": "10.0.0.1:80:8080",
                    "tags": {"service": "web", "mesh": "other", "instance": "x", "job": "y"},
                }
            ]
        },
    )
    got = build(_mesh(metrics=NON_STANDARD), dataplane)
    assert got is not None
    assert (got["labels"]["mesh"], got["labels"]["instance"], got["labels"]["job"]) == (
        "demo",
        "web-1",
        "web",
    )
    assert got["labels"]["meshs"] == ",other,"


def test_sanitize_label_name_is_prometheus_s():
    assert assignments.sanitize_label_name("kuma.io/service-name:x") == "kuma_io_service_name_x"
    assert assignments.sanitize_label_name("ok_Name_9") == "ok_Name_9"


def test_file_sd_groups_one_per_target_address_apart():
    mesh = _mesh(metrics=NON_STANDARD)
    web = assignments.build(
        "demo",
        mesh.spec,
        "web-1",
        _dataplane(
            "web-1", {"inbound": [{"interface": "10.0.0.2:80:8080", "tags": {"service": "web"}}]}
        ).spec,
    )
    backend = assignments.build("demo", mesh.spec, "backend-01", _dataplane("b", BACKEND).spec)
    assert web is not None and backend is not None
    groups = convert([web, backend])
    assert [g.source for g in groups] == [
        "/meshes/demo/dataplanes/backend-01/0",
        "/meshes/demo/dataplanes/web-1/0",
    ]
    assert groups[1] == TargetGroup(
        source="/meshes/demo/dataplanes/web-1/0",
        targets=("10.0.0.2:1234",),
        labels=tuple(
            sorted(
                {
                    "__scheme__": "http",
                    "__metrics_path__": "/non-standard-path",
                    "job": "web",
                    "instance": "web-1",
                    "mesh": "demo",
                    "dataplane": "web-1",
                    "service": "web",
                    "services": ",web,",
                }.items()
            )
        ),
    )
    assert render([]) == b"[]\n"
    assert b'"targets": [\n            "10.0.0.2:1234"\n        ]' in render(groups)
