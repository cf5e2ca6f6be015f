"""The injector over HTTPS under gunicorn: AdmissionReview v1/v1beta1 in, patch out, applied with
jsonpatch and checked with kubernetes-validate --strict."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonpatch
import pytest
import requests

from tests.injector.conftest import Injector, admission_review, pod, validate_pod
from tests.prom_text import sample_sum

VERSIONS = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]


def answer(injector: Injector, review: dict[str, Any]) -> dict[str, Any]:
    resp = injector.post(review)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["apiVersion"] == review["apiVersion"]
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]


def injected(injector: Injector, obj: dict[str, Any], version: str = VERSIONS[0]) -> dict:
    """Admit `obj`, apply the patch, validate and return the resulting Pod."""
    response = answer(injector, admission_review(obj, version))
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    result = jsonpatch.apply_patch(obj, patch)
    validate_pod(result)
    return result


def container(obj: dict[str, Any], name: str, key: str = "containers") -> dict[str, Any]:
    (found,) = [c for c in obj["spec"].get(key, []) if c["name"] == name]
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_deployment_style_pod(injector: Injector, version: str):
    original = pod()
    validate_pod(original)
    result = injected(injector, original, version)
    ann = result["metadata"]["annotations"]
    assert ann == {
        "kuma.io/mesh": "default",
        "kuma.io/sidecar-injected": "true",
        "kuma.io/transparent-proxying": "enabled",
        "kuma.io/transparent-proxying-port": "15001",
    }
    sidecar = container(result, "kuma-sidecar")
    assert sidecar["image"] == "kuma/kuma-dp:9.9.9"
    assert sidecar["args"] == ["run", "--log-level=info"]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["KUMA_DATAPLANE_NAME"] == "$(POD_NAME).$(POD_NAMESPACE)"
    assert env["KUMA_DATAPLANE_MESH"] == "default"
    assert env["KUMA_CONTROL_PLANE_API_SERVER_URL"].startswith("http://127.0.0.8:")
    assert (
        sidecar["volumeMounts"][0]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    )
    init = container(result, "kuma-init", "initContainers")
    assert init["image"] == "kuma/kuma-init:9.9.9"
    assert init["securityContext"] == {"capabilities": {"add": ["NET_ADMIN"]}}
    assert [c["name"] for c in result["spec"]["containers"]] == ["app", "kuma-sidecar"]


def test_named_and_numeric_ports_and_existing_init_containers(injector: Injector):
    original = pod(
        name="api-0",
        ports=[
            {"name": "http", "containerPort": 8080},
            {"containerPort": 9090, "protocol": "TCP"},
            {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
        ],
        annotations={"team": "payments", "kuma.io/mesh": "custom-metrics"},
        init_containers=[{"name": "migrate", "image": "busybox:1.36", "command": ["true"]}],
    )
    result = injected(injector, original)
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["migrate", "kuma-init"]
    assert result["spec"]["containers"][0] == original["spec"]["containers"][0]
    ann = result["metadata"]["annotations"]
    assert ann["team"] == "payments"
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == "1234"
    assert ann["prometheus.io/path"] == "/stats"


def test_pod_in_labelled_namespace_without_annotations(injector: Injector):
    """The webhook's namespaceSelector only sends Pods of labelled namespaces."""
    original = pod(namespace="labelled", annotations=None, token_mount=False)
    result = injected(injector, original, "admission.k8s.io/v1beta1")
    assert "volumeMounts" not in container(result, "kuma-sidecar")
    assert result["metadata"]["annotations"]["kuma.io/sidecar-injected"] == "true"


def test_mesh_with_metrics_and_pod_overrides(injector: Injector):
    original = pod(
        annotations={
            "kuma.io/mesh": "metrics",
            "prometheus.metrics.kuma.io/port": "7777",
            "prometheus.metrics.kuma.io/path": "/m",
            "kuma.io/gateway": "enabled",
        }
    )
    result = injected(injector, original)
    ann = result["metadata"]["annotations"]
    assert (ann["prometheus.io/port"], ann["prometheus.io/path"]) == ("7777", "/m")
    assert container(result, "kuma-init", "initContainers")["args"][-2:] == ["-b", ""]
    assert {e["name"]: e.get("value") for e in container(result, "kuma-sidecar")["env"]}[
        "KUMA_DATAPLANE_MESH"
    ] == "metrics"


@pytest.mark.parametrize("version", VERSIONS)
def test_opted_out_pod_is_allowed_unchanged(injector: Injector, version: str):
    response = answer(
        injector,
        admission_review(pod(annotations={"kuma.io/sidecar-injection": "disabled"}), version),
    )
    assert response == {"uid": response["uid"], "allowed": True}


def test_already_injected_pod_is_left_alone(injector: Injector):
    once = injected(injector, pod())
    response = answer(injector, admission_review(once))
    assert response["allowed"] is True
    assert "patch" not in response
    # an injected Pod whose annotations were stripped still gets no second sidecar
    stripped = {**once, "metadata": {**once["metadata"], "annotations": {}}}
    assert "patch" not in answer(injector, admission_review(stripped))


@pytest.mark.parametrize("version", VERSIONS)
def test_pod_in_missing_mesh_is_rejected_whole(injector: Injector, version: str):
    review = admission_review(pod(annotations={"kuma.io/mesh": "nope"}), version)
    response = answer(injector, review)
    assert response["allowed"] is False
    assert "patch" not in response
    status = response["status"]
    assert status["code"] == 404
    assert status["reason"] == "NotFound"
    assert "mesh 'nope' does not exist" in status["message"]
    assert "demo/web-7d4b9c-" in status["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview"}).encode(),
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
        json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}
        ).encode(),
    ],
)
def test_malformed_requests_get_an_admission_error(injector: Injector, body: bytes):
    resp = injector.post(body)
    assert resp.status_code == 200
    response = resp.json()["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert response["status"]["message"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("spec"), "spec: must be an object"),
        (lambda p: p["spec"].update(containers=[]), "spec.containers: must be a non-empty list"),
        (lambda p: p["spec"].update(containers="app"), "spec.containers: must be a non-empty list"),
        (
            lambda p: p["metadata"].update(annotations={"prometheus.metrics.kuma.io/port": "x"}),
            "must be a port",
        ),
    ],
)
def test_malformed_pods_get_an_admission_error(injector: Injector, mutate: Any, message: str):
    obj = pod()
    mutate(obj)
    review = admission_review(obj, "admission.k8s.io/v1beta1")
    response = answer(injector, review)
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert message in response["status"]["message"]


def test_non_create_operations_pass_through(injector: Injector):
    review = admission_review(pod())
    review["request"]["operation"] = "UPDATE"
    assert answer(injector, review) == {"uid": review["request"]["uid"], "allowed": True}


def test_health_endpoints_and_unknown_paths(injector: Injector):
    assert injector.get("/healthy").status_code == 200
    assert injector.get("/ready").status_code == 200
    assert injector.get("/inject-sidecar").status_code == 405
    assert injector.get("/nope").status_code == 404


def test_plain_http_is_refused(injector: Injector):
    with pytest.raises(requests.ConnectionError):
        requests.get(injector.url.replace("https://", "http://") + "/healthy", timeout=3)


def test_metrics_count_admissions_of_both_workers(injector: Injector):
    def admissions() -> float:
        body = injector.get("/metrics").text
        return sample_sum(
            body, "controller_runtime_webhook_requests_total", code="200", webhook="/inject-sidecar"
        )

    before = admissions()
    for _ in range(6):
        review = admission_review(pod())
        review["request"]["operation"] = "UPDATE"
        response = requests.post(
            injector.url + "/inject-sidecar",
            json=review,
            headers={"Connection": "close"},  # a new connection each: either worker takes it
            verify=injector.ca_file,
            timeout=10,
        )
        assert response.status_code == 200
    for _ in range(4):  # whichever worker answers the scrape
        assert admissions() == before + 6
