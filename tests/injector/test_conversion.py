"""Pod -> Dataplane (spec §11.3): table tests, one rule each."""

from __future__ import annotations

from typing import Any

import pytest

from kuma.resources.base import Resource
from kuma.resources.registry import DATAPLANE, decode_spec, encode_spec, validate_spec
from services.injector.conversion import pod_to_dataplane, to_custom_resource

INJECTED = {"kuma.io/sidecar-injected": "true"}


def k8s_pod(
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    ip: str | None = "10.0.0.5",
    namespace: str = "demo",
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "namespace": namespace,
            "uid": "0d5a-uid",
            "labels": {"app": "web", "version": "v1"} if labels is None else labels,
            "annotations": {**INJECTED, **(annotations or {})},
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "web",
                    "ports": [{"name": "http", "containerPort": 8080}] if ports is None else ports,
                }
            ]
        },
        "status": {},
    }
    if ip:
        obj["status"]["podIP"] = ip
    return obj


def svc(
    name: str,
    ports: list[dict[str, Any]],
    *,
    selector: dict[str, str] | None = None,
    namespace: str = "demo",
    cluster_ip: str = "10.96.0.10",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports, "clusterIP": cluster_ip}
    if selector is not None:
        spec["selector"] = selector
    return {"kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


WEB = svc("web", [{"port": 80, "targetPort": "http"}], selector={"app": "web"})


def other(name: str, mesh: str, *services: str) -> Resource:
    spec = decode_spec(
        DATAPLANE,
        {
            "networking": {
                "inbound": [
                    {"interface": f"10.0.1.{i + 1}:80:80", "tags": {"service": s}}
                    for i, s in enumerate(services)
                ]
            }
        },
    )
    return Resource(type=DATAPLANE, mesh=mesh, name=name, spec=spec)


def inbound(dp: Resource) -> list[tuple[str, dict[str, str]]]:
    return [(i.interface, dict(i.tags)) for i in dp.spec.networking.inbound]


def test_basic_pod():
    dp = pod_to_dataplane(k8s_pod(), [WEB], [])
    assert dp is not None
    assert (dp.type, dp.mesh, dp.name) == ("Dataplane", "default", "web-1.demo")
    assert inbound(dp) == [
        ("10.0.0.5:8080:8080", {"app": "web", "version": "v1", "service": "web.demo.svc:80"})
    ]
    validate_spec(DATAPLANE, dp.spec)


@pytest.mark.parametrize(
    "obj",
    [
        k8s_pod(annotations={"kuma.io/sidecar-injected": "false"}),
        k8s_pod(ip=None),
    ],
    ids=["not-injected", "no-pod-ip"],
)
def test_only_injected_pods_with_an_ip(obj):
    assert pod_to_dataplane(obj, [WEB], []) is None


def test_mesh_annotation():
    dp = pod_to_dataplane(k8s_pod(annotations={"kuma.io/mesh": "payments"}), [WEB], [])
    assert dp is not None and dp.mesh == "payments"


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, None),
        ({"kuma.io/transparent-proxying": "enabled"}, None),  # no port: nothing to redirect to
        (
            {
                "kuma.io/transparent-proxying": "enabled",
                "kuma.io/transparent-proxying-port": "15001",
            },
            15001,
        ),
        (
            {"kuma.io/transparent-proxying": "disabled", "kuma.io/transparent-proxying-port": "1"},
            None,
        ),
    ],
)
def test_transparent_proxying(annotations, expected):
    dp = pod_to_dataplane(k8s_pod(annotations=annotations), [WEB], [])
    assert dp is not None
    tp = dp.spec.networking.transparent_proxying
    assert (tp.redirect_port if tp else None) == expected


@pytest.mark.parametrize(
    ("services", "ports", "expected"),
    [
        # named targetPort -> the container port of that name
        ([WEB], None, ["10.0.0.5:8080:8080 web.demo.svc:80"]),
        # numeric targetPort, declared
        (
            [svc("api", [{"port": 90, "targetPort": 8080}], selector={"app": "web"})],
            None,
            ["10.0.0.5:8080:8080 api.demo.svc:90"],
        ),
        # numeric targetPort not declared by any container: used anyway (Kuma 0.4.0 fix)
        (
            [svc("api", [{"port": 90, "targetPort": 9000}], selector={"app": "web"})],
            None,
            ["10.0.0.5:9000:9000 api.demo.svc:90"],
        ),
        # targetPort unset -> port
        (
            [svc("api", [{"port": 8080}], selector={"app": "web"})],
            None,
            ["10.0.0.5:8080:8080 api.demo.svc:8080"],
        ),
        # unknown port name -> skipped
        ([svc("api", [{"port": 90, "targetPort": "grpc"}], selector={"app": "web"})], None, []),
        # UDP service port -> skipped
        (
            [
                svc(
                    "dns",
                    [{"port": 53, "protocol": "UDP", "targetPort": 53}],
                    selector={"app": "web"},
                )
            ],
            [{"name": "dns", "containerPort": 53, "protocol": "UDP"}],
            [],
        ),
        # named target with a different protocol -> skipped
        (
            [svc("dns", [{"port": 53, "targetPort": "dns"}], selector={"app": "web"})],
            [{"name": "dns", "containerPort": 53, "protocol": "UDP"}],
            [],
        ),
        # selector does not match
        ([svc("db", [{"port": 5432}], selector={"app": "db"})], None, []),
        # partial selector match is not a match
        ([svc("db", [{"port": 5432}], selector={"app": "web", "tier": "db"})], None, []),
        # no selector: selects no Pods (Kubernetes semantics; Kuma 0.3 matched all)
        ([svc("ext", [{"port": 80}])], None, []),
        # a Service of another namespace does not give inbounds
        ([svc("web", [{"port": 80}], selector={"app": "web"}, namespace="other")], None, []),
        # several ports, several services
        (
            [
                svc(
                    "web",
                    [
                        {"name": "a", "port": 80, "targetPort": "http"},
                        {"name": "b", "port": 81, "targetPort": 9090},
                    ],
                    selector={"app": "web"},
                ),
                svc("web-admin", [{"port": 82, "targetPort": "http"}], selector={"version": "v1"}),
            ],
            [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}],
            [
                "10.0.0.5:8080:8080 web.demo.svc:80",
                "10.0.0.5:9090:9090 web.demo.svc:81",
                "10.0.0.5:8080:8080 web-admin.demo.svc:82",
            ],
        ),
    ],
)
def test_inbound_rules(services, ports, expected):
    dp = pod_to_dataplane(k8s_pod(ports=ports), services, [])
    assert dp is not None
    assert [f"{i} {t['service']}" for i, t in inbound(dp)] == expected


def test_service_tag_overrides_pod_label():
    dp = pod_to_dataplane(k8s_pod(labels={"app": "web", "service": "mine"}), [WEB], [])
    assert dp is not None
    assert inbound(dp)[0][1] == {"app": "web", "service": "web.demo.svc:80"}


def test_gateway_takes_the_first_inbound_s_tags():
    dp = pod_to_dataplane(k8s_pod(annotations={"kuma.io/gateway": "enabled"}), [WEB], [])
    assert dp is not None
    assert dp.spec.networking.inbound == []
    assert dict(dp.spec.networking.gateway.tags) == {
        "app": "web",
        "version": "v1",
        "service": "web.demo.svc:80",
    }
    validate_spec(DATAPLANE, dp.spec)


def test_outbounds_from_other_dataplanes_of_the_mesh():
    services = [
        WEB,
        svc("backend", [{"port": 8080}], selector={"app": "backend"}, cluster_ip="10.96.0.20"),
        svc(
            "db",
            [{"port": 5432}],
            selector={"app": "db"},
            namespace="data",
            cluster_ip="10.96.0.30",
        ),
        svc("headless", [{"port": 80}], selector={"app": "h"}, cluster_ip="None"),
    ]
    dataplanes = [
        other("backend-1.demo", "default", "backend.demo.svc:8080"),
        other("backend-2.demo", "default", "backend.demo.svc:8080"),  # same service: one outbound
        other("db-1.data", "default", "db.data.svc:5432"),
        other("x.other", "other-mesh", "elsewhere.demo.svc:80"),  # another mesh: ignored
        other("web-1.demo", "default", "self.demo.svc:1"),  # this Dataplane itself: ignored
        other("legacy", "default", "legacy-service"),  # not <name>.<ns>.svc:<port>: skipped
        other("gone", "default", "gone.demo.svc:80"),  # no such Service: skipped
        other("h-1", "default", "headless.demo.svc:80"),  # headless: skipped
    ]
    dp = pod_to_dataplane(k8s_pod(), services, dataplanes)
    assert dp is not None
    assert [(o.interface, o.service) for o in dp.spec.networking.outbound] == [
        ("10.96.0.20:8080", "backend.demo.svc:8080"),
        ("10.96.0.30:5432", "db.data.svc:5432"),
    ]
    validate_spec(DATAPLANE, dp.spec)


def test_custom_resource_is_owned_by_the_pod():
    obj = k8s_pod(annotations={"kuma.io/mesh": "payments"})
    dp = pod_to_dataplane(obj, [WEB], [])
    assert dp is not None
    cr = to_custom_resource(dp, obj)
    assert cr["apiVersion"] == "kuma.io/v1alpha1"
    assert cr["kind"] == "Dataplane"
    assert cr["mesh"] == "payments"
    assert cr["metadata"]["name"] == "web-1"
    assert cr["metadata"]["namespace"] == "demo"
    (owner,) = cr["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-1",
        "uid": "0d5a-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert cr["spec"] == encode_spec(dp.spec)
    assert cr["spec"]["networking"]["inbound"][0]["interface"] == "10.0.0.5:8080:8080"
