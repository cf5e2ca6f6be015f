"""The injection rules and patch building as pure functions (no server)."""

from __future__ import annotations

import copy
import json

import jsonpatch
import pytest

from cli.kuma_dp.main import run as kuma_dp_run
from kuma.config import load_config
from kuma.errors import MeshNotFoundError, StoreUnavailableError, ValidationError
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, decode_spec
from kuma.wiring import ensure_default_mesh, open_core
from services.injector import inject
from services.injector.admission import review
from services.injector.app import create_app
from services.injector.config import load_injector_config
from services.injector.inject import MeshInfo, build_patch, decide
from services.injector.meshes import ApiMeshLookup, StoreMeshLookup
from tests.injector.conftest import admission_review, free_port, pod, validate_pod

CFG = load_injector_config(env={})
SECTION = CFG.injector
DEFAULT = MeshInfo("default")
ON = {"kuma.io/sidecar-injection": "enabled"}
OFF = {"kuma.io/sidecar-injection": "disabled"}


@pytest.mark.parametrize(
    ("ns_labels", "pod_annotations", "expected"),
    [
        ({}, None, False),
        ({}, {}, False),
        (ON, None, True),
        ({}, ON, True),
        (ON, OFF, False),  # the Pod opts out of a labelled namespace
        (OFF, ON, True),  # the Pod opts in
        (ON, {"kuma.io/sidecar-injection": "Enabled"}, True),
        (ON, {"kuma.io/sidecar-injection": "DISABLED"}, False),
        (ON, {"kuma.io/sidecar-injected": "true"}, False),  # already injected
        ({}, {"kuma.io/sidecar-injection": "maybe"}, False),
    ],
)
def test_decide(ns_labels, pod_annotations, expected):
    decision = decide(pod(annotations=pod_annotations), ns_labels)
    assert decision.inject is expected
    assert decision.reason


def test_a_pod_with_the_sidecar_container_is_not_injected_again():
    once = jsonpatch.apply_patch(pod(), build_patch(pod(), DEFAULT, SECTION))
    assert not decide(once, ON).inject
    only_init = pod(init_containers=[{"name": "kuma-init", "image": "x"}])
    assert not decide(only_init, ON).inject


def test_mesh_name():
    assert inject.mesh_name(pod()) == "default"
    assert inject.mesh_name(pod(annotations={"kuma.io/mesh": " payments "})) == "payments"
    assert inject.mesh_name(pod(annotations={"kuma.io/mesh": ""})) == "default"


def test_sidecar_env_vars_are_exactly_those_kuma_dp_reads():
    sidecar = inject.sidecar_container(pod(), DEFAULT, SECTION)
    kuma_vars = {e["name"] for e in sidecar["env"] if e["name"].startswith("KUMA_")}
    dp_vars = {p.envvar for p in kuma_dp_run.params if getattr(p, "envvar", None)}
    assert kuma_vars <= dp_vars
    assert kuma_vars == {
        "KUMA_CONTROL_PLANE_API_SERVER_URL",
        "KUMA_DATAPLANE_MESH",
        "KUMA_DATAPLANE_NAME",
        "KUMA_DATAPLANE_ADMIN_PORT",
        "KUMA_DATAPLANE_DRAIN_TIME",
        "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH",
    }
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["KUMA_DATAPLANE_DRAIN_TIME"]["value"] == "30s"
    assert env["KUMA_DATAPLANE_ADMIN_PORT"]["value"] == "9901"
    assert env["KUMA_DATAPLANE_RUNTIME_TOKEN_PATH"]["value"] == (
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # $(POD_NAME) only expands when POD_NAME is defined earlier in the list
    names = [e["name"] for e in sidecar["env"]]
    assert names.index("POD_NAME") < names.index("KUMA_DATAPLANE_NAME")
    assert names.index("POD_NAMESPACE") < names.index("KUMA_DATAPLANE_NAME")


def test_sidecar_follows_the_config():
    cfg = load_injector_config(
        env={
            "KUMA_INJECTOR_SIDECAR_CONTAINER_UID": "1234",
            "KUMA_INJECTOR_SIDECAR_CONTAINER_GUI": "4321",
            "KUMA_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT": "15555",
            "KUMA_INJECTOR_SIDECAR_CONTAINER_ADMIN_PORT": "9000",
            "KUMA_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME": "1m5s",
            "KUMA_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_PERIOD_SECONDS": "7",
            "KUMA_INJECTOR_SIDECAR_CONTAINER_LIVENESS_PROBE_INITIAL_DELAY_SECONDS": "30",
            "KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY": "1Gi",
        }
    ).injector
    obj = pod()
    result = jsonpatch.apply_patch(obj, build_patch(obj, DEFAULT, cfg))
    validate_pod(result)
    sidecar = result["spec"]["containers"][-1]
    assert sidecar["securityContext"] == {"runAsUser": 1234, "runAsGroup": 4321}
    assert sidecar["readinessProbe"]["periodSeconds"] == 7
    assert sidecar["livenessProbe"]["initialDelaySeconds"] == 30
    assert sidecar["livenessProbe"]["exec"]["command"][-1] == "http://127.0.0.1:9000"
    assert sidecar["resources"]["limits"]["memory"] == "1Gi"
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["KUMA_DATAPLANE_DRAIN_TIME"] == "1m5s"
    init = result["spec"]["initContainers"][-1]
    assert init["args"] == [
        "-p", "15555", "-u", "1234", "-g", "4321", "-m", "REDIRECT", "-i", "*", "-b", "*",
    ]  # fmt: skip
    assert result["metadata"]["annotations"]["kuma.io/transparent-proxying-port"] == "15555"


def test_annotation_keys_are_escaped_and_existing_values_overwritten():
    obj = pod(annotations={"kuma.io/mesh": "default", "kuma.io/transparent-proxying": "off"})
    patch = build_patch(obj, DEFAULT, SECTION)
    paths = [op["path"] for op in patch]
    assert "/metadata/annotations/kuma.io~1sidecar-injected" in paths
    result = jsonpatch.apply_patch(obj, patch)
    assert result["metadata"]["annotations"]["kuma.io/transparent-proxying"] == "enabled"
    validate_pod(result)


def test_pod_without_metadata_or_init_list():
    obj = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a", "image": "b"}]}}
    result = jsonpatch.apply_patch(obj, build_patch(obj, DEFAULT, SECTION))
    assert result["metadata"]["annotations"]["kuma.io/sidecar-injected"] == "true"
    obj["spec"]["initContainers"] = []
    result = jsonpatch.apply_patch(obj, build_patch(obj, DEFAULT, SECTION))
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["kuma-init"]


def test_prometheus_annotations():
    metrics = MeshInfo("m", prometheus_port=5670, prometheus_path="/metrics")
    ann = inject.new_annotations(pod(), metrics, SECTION)
    assert (ann["prometheus.io/scrape"], ann["prometheus.io/port"], ann["prometheus.io/path"]) == (
        "true",
        "5670",
        "/metrics",
    )
    # a Pod that already configures scraping keeps its own
    own = inject.new_annotations(pod(annotations={"prometheus.io/port": "80"}), metrics, SECTION)
    assert "prometheus.io/scrape" not in own
    # no metrics on the Mesh: no Prometheus annotations
    assert "prometheus.io/scrape" not in inject.new_annotations(pod(), DEFAULT, SECTION)


def test_a_malformed_pod_gets_an_error_and_no_patch():
    obj = pod(annotations={"prometheus.metrics.kuma.io/port": "99999"})
    with pytest.raises(ValidationError, match="must be a port"):
        build_patch(obj, DEFAULT, SECTION)
    with pytest.raises(ValidationError, match="must be a Pod object"):
        build_patch([], DEFAULT, SECTION)  # type: ignore[arg-type]


def test_the_patch_does_not_change_the_input():
    obj = pod()
    before = copy.deepcopy(obj)
    build_patch(obj, MeshInfo("m", 5670), SECTION)
    assert obj == before


class Meshes:
    def __init__(self, *names: str):
        self.names = names

    def get(self, name: str) -> MeshInfo:
        if name not in self.names:
            raise MeshNotFoundError(name)
        return MeshInfo(name)


def test_review_without_namespace_label_needs_the_pod_annotation():
    body = json.dumps(admission_review(pod())).encode()
    assert "patch" not in review(body, {}, Meshes("default"), SECTION)["response"]
    body = json.dumps(admission_review(pod(annotations=ON))).encode()
    assert "patch" in review(body, {}, Meshes("default"), SECTION)["response"]


def test_store_mesh_lookup():
    cfg = load_config(env={})
    core = open_core(cfg, name="injector-test")
    try:
        ensure_default_mesh(cfg, core.manager)
        spec = decode_spec(MESH, {"metrics": {"prometheus": {}}})
        core.manager.create(Resource(type=MESH, mesh="obs", name="obs", spec=spec))
        lookup = StoreMeshLookup(core.manager)
        assert lookup.get("default") == MeshInfo("default")
        assert lookup.get("obs") == MeshInfo("obs", 5670, "/metrics")
        with pytest.raises(MeshNotFoundError):
            lookup.get("nope")
    finally:
        core.close()


def test_control_plane_down_answers_503_so_the_failure_policy_decides():
    dead = f"http://127.0.0.9:{free_port('127.0.0.9')}"
    with pytest.raises(StoreUnavailableError):
        ApiMeshLookup(dead, timeout=1).get("default")
    app = create_app(CFG, ApiMeshLookup(dead, timeout=1))
    resp = app.test_client().post("/inject-sidecar", json=admission_review(pod()))
    assert resp.status_code == 503
    assert "could not ask the control plane API" in resp.get_json()["details"]
