"""The CustomResourceDefinitions of `kumactl install control-plane` (spec §11.5, §11.6).

Each CRD passes `kubernetes-validate --strict`; its schema is structural by the API server's
rules; real objects of each kind (the spec's examples as Kubernetes objects) validate against it
with `jsonschema` and lose no field to pruning, while wrongly typed fields are rejected.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict

from cli.kumactl import crds
from cli.kumactl.main import cli
from cli.kumactl.manifests import LABELS
from kuma.durations import DURATION_PATTERN, parse_duration
from kuma.resources import registry

K8S_VERSION = kubernetes_validate.latest_version()

# Spec §3.2 / §11.5: kind -> (plural, scope).
EXPECTED = {
    "Mesh": ("meshes", "Cluster"),
    "Dataplane": ("dataplanes", "Namespaced"),
    "DataplaneInsight": ("dataplaneinsights", "Namespaced"),
    "HealthCheck": ("healthchecks", "Namespaced"),
    "ProxyTemplate": ("proxytemplates", "Namespaced"),
    "TrafficPermission": ("trafficpermissions", "Namespaced"),
    "TrafficLog": ("trafficlogs", "Namespaced"),
    "TrafficRoute": ("trafficroutes", "Namespaced"),
}

DEFINITIONS = {d["spec"]["names"]["kind"]: d for d in crds.definitions()}


def schema_of(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = DEFINITIONS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


# --- the spec's examples (§3.4-§3.11, §11.3, §11.5) as Kubernetes objects ---------------------

CLUSTER = """\
'@type': type.googleapis.com/envoy.api.v2.Cluster
name: localhost:8443
connectTimeout: 5s
type: STATIC
loadAssignment:
  clusterName: localhost:8443
  endpoints:
  - lbEndpoints:
    - endpoint:
        address:
          socketAddress: {address: 127.0.0.1, portValue: 8443}
"""

EXAMPLES_YAML = """
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  mtls:
    enabled: true
    ca: {builtin: {}}
  tracing:
    zipkin: {address: "zipkin.tracing:9411"}
  logging:
    defaultBackend: file
    backends:
    - name: file
      format: '[%START_TIME%] %KUMA_SOURCE_SERVICE% -> %KUMA_DESTINATION_SERVICE%'
      file: {path: /tmp/access.log}
    - name: logstash
      tcp: {address: 127.0.0.1:5000}
  metrics:
    prometheus: {port: 5670, path: /metrics}
---
apiVersion: kuma.io/v1alpha1
kind: Dataplane
mesh: default
metadata: {name: web-01, namespace: kuma-demo}
spec:
  networking:
    inbound:
    - interface: 192.168.0.2:10000:8080
      tags: {service: web, version: v1}
    outbound:
    - interface: :33033
      service: backend
      servicePort: 5432
    transparentProxying:
      redirectPort: 15001
  metrics:
    prometheus: {port: 1234, path: /stats}
---
apiVersion: kuma.io/v1alpha1
kind: DataplaneInsight
mesh: default
metadata: {name: web-01, namespace: kuma-demo}
status:
  subscriptions:
  - id: 7c6f2a4e-0b1d-4c1e-9f7a-3e2b1c0d9e8f
    controlPlaneInstanceId: 1f3a5b7c-9d1e-4f20-8a3b-5c7d9e1f2a3b
    connectTime: '2019-07-01T00:00:00Z'
    disconnectTime: '2019-07-01T01:00:00.250Z'
    status:
      lastUpdateTime: '2019-07-01T00:59:00Z'
      total: {responsesSent: '12', responsesAcknowledged: '11', responsesRejected: '1'}
      cds: {responsesSent: '3', responsesAcknowledged: '3'}
      eds: {responsesSent: '3', responsesAcknowledged: '2', responsesRejected: '1'}
      lds: {responsesSent: '3', responsesAcknowledged: '3'}
      rds: {responsesSent: '3', responsesAcknowledged: '3'}
---
apiVersion: kuma.io/v1alpha1
kind: HealthCheck
mesh: default
metadata: {name: web-to-backend, namespace: kuma-demo}
spec:
  sources: [{match: {service: web}}]
  destinations: [{match: {service: backend}}]
  conf:
    activeChecks:
      interval: 10s
      timeout: 2s
      unhealthyThreshold: 3
      healthyThreshold: 1
    passiveChecks:
      unhealthyThreshold: 3
      penaltyInterval: 5s
---
apiVersion: kuma.io/v1alpha1
kind: ProxyTemplate
mesh: default
metadata: {name: custom-template, namespace: kuma-demo}
spec:
  selectors:
  - match: {service: backend}
  conf:
    imports: [default-proxy]
    resources:
    - name: localhost:8443
      version: v1
      resource: RESOURCE
---
apiVersion: kuma.io/v1alpha1
kind: TrafficPermission
mesh: default
metadata: {name: web-to-backend, namespace: kuma-demo}
spec:
  sources: [{match: {service: web}}]
  destinations: [{match: {service: backend}}]
---
apiVersion: kuma.io/v1alpha1
kind: TrafficLog
mesh: default
metadata: {name: all-traffic, namespace: kuma-demo}
spec:
  sources: [{match: {service: '*'}}]
  destinations: [{match: {service: '*'}}]
  conf: {backend: file}
---
apiVersion: kuma.io/v1alpha1
kind: TrafficRoute
mesh: default
metadata: {name: route-db, namespace: kuma-demo}
spec:
  sources: [{match: {service: backend}}]
  destinations: [{match: {service: db}}]
  conf:
  - weight: 10
    destination: {service: db, role: master}
  - weight: 90
    destination: {service: db, role: replica}
"""


def examples() -> dict[str, dict[str, Any]]:
    out = {}
    for doc in yaml.safe_load_all(EXAMPLES_YAML):
        if doc["kind"] == "ProxyTemplate":
            doc["spec"]["conf"]["resources"][0]["resource"] = CLUSTER
        out[doc["kind"]] = doc
    return out


GATEWAY = {
    "apiVersion": "kuma.io/v1alpha1",
    "kind": "Dataplane",
    "mesh": "default",
    "metadata": {"name": "kong-01", "namespace": "kong"},
    "spec": {"networking": {"gateway": {"tags": {"service": "kong"}}}},
}


# --- schema helpers ---------------------------------------------------------------------------

_FORMATS = jsonschema.FormatChecker(formats=())
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"not RFC 3339: {value!r}")
    datetime.fromisoformat(re.sub(r"\.(\d{6})\d+", r".\1", value.replace("Z", "+00:00")))
    return True


def as_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes schema as plain JSON Schema: `nullable` becomes a `null` type."""
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if "properties" in node:
        out["properties"] = {k: as_json_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = as_json_schema(node["additionalProperties"])
    if "items" in node:
        out["items"] = as_json_schema(node["items"])
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    return out


def validator(kind: str) -> jsonschema.Draft4Validator:
    schema = as_json_schema(schema_of(kind))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=_FORMATS)


def pruned(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would drop from `value` as unknown to `schema` (pruning)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, dict) and schema.get("type") == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if path == "" and key == "metadata":
                continue  # ObjectMeta is the API server's, never pruned by the CRD
            if key in properties:
                out += pruned(sub, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += pruned(sub, extra, f"{path}.{key}")
            else:
                out.append(f"{path}.{key}")
    elif isinstance(value, list) and schema.get("type") == "array":
        for i, item in enumerate(value):
            out += pruned(item, schema["items"], f"{path}[{i}]")
    return out


_SCHEMA_KEYS = {
    "type", "format", "description", "nullable", "properties", "additionalProperties", "items",
    "required", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems",
    "maxItems", "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip
_FREE = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")


def structural_problems(node: dict[str, Any], path: str = "<root>") -> list[str]:
    """Why `node` is not a structural schema (Kubernetes' rules), or [] when it is."""
    problems = [f"{path}: unexpected keyword {k!r}" for k in node if k not in _SCHEMA_KEYS]
    if not node.get("type") and not any(node.get(k) for k in _FREE):
        problems.append(f"{path}: no type")
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        problems.append(f"{path}: x-kubernetes-preserve-unknown-fields must be true or absent")
    extra = node.get("additionalProperties")
    if "properties" in node and extra is not None:
        problems.append(f"{path}: both properties and additionalProperties")
    if extra is not None and not isinstance(extra, dict):
        problems.append(f"{path}: additionalProperties must be a schema")
    if node.get("type") in ("object", "array") and node.get("enum"):
        problems.append(f"{path}: enum of a composite type")
    if node.get("type") == "array" and not isinstance(node.get("items"), dict):
        problems.append(f"{path}: an array needs one items schema")
    for name, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(extra, dict):
        problems += structural_problems(extra, f"{path}.*")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[]")
    return problems


def set_path(obj: Any, path: list[str | int], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


# --- the definitions --------------------------------------------------------------------------


def test_one_definition_per_registry_type_but_secret():
    kinds = [d["spec"]["names"]["kind"] for d in crds.definitions()]
    registered = [t.k8s_kind for t in registry.TYPES if t.name != registry.SECRET]
    assert kinds == registered
    assert set(kinds) == set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_names_group_and_scope(kind: str):
    plural, scope = EXPECTED[kind]
    crd = DEFINITIONS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.kuma.io"
    spec = crd["spec"]
    assert spec["group"] == "kuma.io"
    assert spec["scope"] == scope
    names = spec["names"]
    assert names["plural"] == plural
    assert names["singular"] == kind.lower()
    assert names["listKind"] == f"{kind}List"
    assert names["categories"] == ["kuma"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] and version["storage"]
    assert version["additionalPrinterColumns"][-1] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


def test_short_names_are_unique():
    short = [n for d in DEFINITIONS.values() for n in d["spec"]["names"].get("shortNames", [])]
    assert len(short) == len(set(short))
    assert DEFINITIONS["TrafficPermission"]["spec"]["names"]["shortNames"] == ["tp"]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_passes_strict_validation(kind: str):
    kubernetes_validate.validate(DEFINITIONS[kind], K8S_VERSION, strict=True)
    kubernetes_validate.validate(
        crds.definition(registry.get_type(kind), LABELS), K8S_VERSION, strict=True
    )


def test_strict_validation_checks_schema_keywords():
    crd = copy.deepcopy(DEFINITIONS["HealthCheck"])
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["examples"] = [{}]  # JSON Schema, but no Kubernetes keyword
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(crd, K8S_VERSION, strict=True)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_schema_is_structural(kind: str):
    schema = schema_of(kind)
    assert structural_problems(schema) == []
    assert schema["properties"]["metadata"] == {"type": "object"}
    # Everything is typed: nothing is free-form in these kinds (raw Envoy resources are text).
    assert "x-kubernetes-preserve-unknown-fields" not in str(schema)


def test_structural_check_is_real():
    assert structural_problems({"type": "object", "properties": {"a": {}}}) == ["<root>.a: no type"]
    assert structural_problems(
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {}}
    ) == ["<root>: both properties and additionalProperties", "<root>.*: no type"]
    assert structural_problems({"type": "string", "$ref": "#/x"}) == [
        "<root>: unexpected keyword '$ref'"
    ]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_top_level_fields(kind: str):
    properties = schema_of(kind)["properties"]
    data = "status" if kind == "DataplaneInsight" else "spec"
    expected = {"apiVersion", "kind", "metadata", data}
    if kind != "Mesh":
        expected.add("mesh")
        assert properties["mesh"]["type"] == "string"
    assert set(properties) == expected
    assert properties[data]["type"] == "object"


def test_wire_names_and_shapes():
    networking = schema_of("Dataplane")["properties"]["spec"]["properties"]["networking"]
    props = networking["properties"]
    assert set(props) == {"inbound", "gateway", "outbound", "transparentProxying"}
    assert props["transparentProxying"]["properties"]["redirectPort"]["type"] == "integer"
    tags = props["inbound"]["items"]["properties"]["tags"]
    assert tags == {"type": "object", "additionalProperties": {"type": "string"}}
    assert props["gateway"]["nullable"] is True
    mesh = schema_of("Mesh")["properties"]["spec"]["properties"]
    assert mesh["mtls"]["properties"]["ca"]["properties"]["builtin"] == {
        "type": "object",
        "nullable": True,
    }
    resource = schema_of("ProxyTemplate")["properties"]["spec"]["properties"]["conf"]["properties"][
        "resources"
    ]["items"]["properties"]["resource"]
    assert resource == {"type": "string"}
    weight = schema_of("TrafficRoute")["properties"]["spec"]["properties"]["conf"]["items"][
        "properties"
    ]["weight"]
    assert weight == {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_printer_columns_point_into_the_schema(kind: str):
    for column in DEFINITIONS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"].lstrip(".").split(".")
        if path[0] == "metadata":
            continue
        node = schema_of(kind)
        for part in path:
            node = node["properties"][part]
        assert node["type"] == column["type"], column


# --- real objects against the schemas ----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_example_is_a_valid_resource(kind: str):
    """The examples are real: Kuma's own decoder and rules accept them."""
    obj = examples()[kind]
    data = obj["status"] if kind == "DataplaneInsight" else obj["spec"]
    spec = registry.decode_spec(kind, data)
    registry.validate_spec(kind, spec)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_example_validates_against_its_schema(kind: str):
    obj = examples()[kind]
    validator(kind).validate(obj)
    assert pruned(obj, schema_of(kind)) == []


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_what_the_control_plane_writes_fits_the_schema(kind: str):
    obj = examples()[kind]
    field = "status" if kind == "DataplaneInsight" else "spec"
    obj[field] = registry.encode_spec(registry.decode_spec(kind, obj[field]))
    validator(kind).validate(obj)
    assert pruned(obj, schema_of(kind)) == []


def test_the_pod_controllers_dataplane_fits_the_schema():
    """What the Pod -> Dataplane conversion writes (spec §11.3) is accepted whole."""
    from services.injector.conversion import pod_to_dataplane, to_custom_resource

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "namespace": "demo",
            "uid": "0d5a-uid",
            "labels": {"app": "web", "version": "v1"},
            "annotations": {
                "kuma.io/sidecar-injected": "true",
                "kuma.io/transparent-proxying": "enabled",
                "kuma.io/transparent-proxying-port": "15001",
            },
        },
        "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]},
        "status": {"podIP": "10.0.0.5"},
    }
    web = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    dataplane = pod_to_dataplane(pod, [web], [])
    assert dataplane is not None
    obj = to_custom_resource(dataplane, pod)
    assert obj["spec"]["networking"]["transparentProxying"] == {"redirectPort": 15001}
    validator("Dataplane").validate(obj)
    assert pruned(obj, schema_of("Dataplane")) == []


def test_gateway_dataplane_and_minimal_objects():
    validator("Dataplane").validate(GATEWAY)
    assert pruned(GATEWAY, schema_of("Dataplane")) == []
    for kind in EXPECTED:
        minimal = {"apiVersion": "kuma.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}}
        validator(kind).validate(minimal)


def test_unknown_and_snake_case_fields_are_pruned():
    obj = examples()["Dataplane"]
    obj["spec"]["networking"]["transparent_proxying"] = {"redirect_port": 15001}
    obj["spec"]["bogus"] = 1
    assert pruned(obj, schema_of("Dataplane")) == [
        ".spec.networking.transparent_proxying",
        ".spec.bogus",
    ]


WRONG: list[tuple[str, list[str | int], Any]] = [
    ("Mesh", ["spec", "mtls", "enabled"], "yes"),
    ("Mesh", ["spec", "metrics", "prometheus", "port"], "5670"),
    ("Mesh", ["spec", "logging", "backends"], {"name": "file"}),
    ("Dataplane", ["mesh"], 5),
    ("Dataplane", ["spec", "networking", "inbound"], {"interface": "192.168.0.2:10000:8080"}),
    ("Dataplane", ["spec", "networking", "inbound", 0, "tags", "version"], 1),
    ("Dataplane", ["spec", "networking", "outbound", 0, "servicePort"], "5432"),
    ("DataplaneInsight", ["status", "subscriptions", 0, "connectTime"], "yesterday"),
    ("DataplaneInsight", ["status", "subscriptions", 0, "status", "total", "responsesSent"], "-1"),
    ("HealthCheck", ["spec", "conf", "activeChecks", "interval"], "ten seconds"),
    ("HealthCheck", ["spec", "conf", "passiveChecks", "penaltyInterval"], 5),
    ("HealthCheck", ["spec", "conf", "activeChecks", "healthyThreshold"], -1),
    ("ProxyTemplate", ["spec", "conf", "imports"], "default-proxy"),
    ("ProxyTemplate", ["spec", "conf", "resources", 0, "resource"], {"name": "x"}),
    ("TrafficPermission", ["spec", "sources", 0, "match"], ["service"]),
    ("TrafficPermission", ["spec", "destinations"], {"match": {"service": "backend"}}),
    ("TrafficLog", ["spec", "conf", "backend"], 5),
    ("TrafficRoute", ["spec", "conf", 0, "weight"], "ten"),
    ("TrafficRoute", ["spec", "conf", 1, "destination", "role"], None),
]


@pytest.mark.parametrize(("kind", "path", "value"), WRONG)
def test_wrongly_typed_field_is_rejected(kind: str, path: list[str | int], value: Any):
    obj = examples()[kind]
    set_path(obj, path, value)
    errors = list(validator(kind).iter_errors(obj))
    assert [list(e.absolute_path) for e in errors] == [path]


@pytest.mark.parametrize(
    "text",
    ["5s", "0.250s", "1m30s", "2h3m4s", "250ms", "1.5s", "0", "-1s", "+1s", "10µs", "10μs", ".5s"],
)
def test_durations_the_control_plane_reads_pass(text: str):
    parse_duration(text)
    assert re.match(DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["ten", "5", "s", "1d", "", "5 s", "-"])
def test_durations_the_control_plane_refuses_fail(text: str):
    with pytest.raises(ValueError):
        parse_duration(text)
    assert not re.match(DURATION_PATTERN, text)


# --- the converter on shapes the resources do not use (yet) ------------------------------------


def test_free_form_fields_preserve_unknown_fields():
    class Loose(BaseModel):
        raw: Any = None
        labels: dict[str, Any] = {}
        items: list[Any] = []

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        name: str = ""

    schema = crds.structural_schema(Loose)
    assert schema["properties"]["raw"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert schema["properties"]["labels"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert schema["properties"]["items"]["items"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert structural_problems(schema) == []
    opened = crds.structural_schema(Open)
    assert opened["x-kubernetes-preserve-unknown-fields"] is True
    assert structural_problems(opened) == []


def test_unions_have_no_structural_schema():
    class Mixed(BaseModel):
        port: int | str = 0

    with pytest.raises(crds.UnsupportedSchema):
        crds.structural_schema(Mixed)


# --- in the install output ----------------------------------------------------------------------


def test_install_prints_the_definitions(manifests_text: str):
    docs = [yaml.safe_load(part) for part in manifests_text.split("\n---\n")[1:]]
    printed = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert printed == sorted(crds.definitions(LABELS), key=lambda d: d["metadata"]["name"])
    kinds = [d["kind"] for d in docs]
    first, last = (
        kinds.index("CustomResourceDefinition"),
        len(kinds) - 1 - kinds[::-1].index("CustomResourceDefinition"),
    )
    assert kinds[first - 1] == "ServiceAccount"
    assert kinds[last + 1] == "ClusterRole"


@pytest.fixture(scope="module")
def manifests_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    home = tmp_path_factory.mktemp("home")
    result = CliRunner().invoke(cli, ["install", "control-plane"], env={"HOME": str(home)})
    assert result.exit_code == 0, result.output
    return result.stdout
