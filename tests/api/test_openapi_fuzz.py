"""The API against its own OpenAPI document (schemathesis), with every check schemathesis has:
no 5xx; every status code, content type, header and body as documented; every request the
document allows is accepted (positive data) and every request it forbids is refused (negative
data). Bounded: a few examples per operation and mode, against the memory store over real HTTP.

Rules the document can only state in words: a PUT body's `mesh` and `name` are the URL's, a
resource goes into a Mesh that exists, a ProxyTemplate's raw resource is an Envoy message, a
Mesh's logging backends have unique names, one of which `defaultBackend` is, and a Mesh takes a
provided CA once its signing certificate is uploaded. Generated PUTs of valid data go into the
Mesh `default` and follow these rules (the URL's names, a real Envoy Cluster, backend names made
unique, the builtin CA), as a client reading the document would send them.

One operation is exempt from "valid data is accepted": a provided CA's upload, whose body is a CA
certificate and its key (PEM), which no schema can describe."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from services.api.openapi import build_openapi
from tests.api.conftest import Api, Serve

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 15

DOCUMENT = build_openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
RESULTS = list(SCHEMA.get_all_operations())
OPERATIONS = [result.ok() for result in RESULTS if isinstance(result, Ok)]
assert len(OPERATIONS) == len(RESULTS), "every operation of the document can be fuzzed"


def _has_input(op: Any) -> bool:
    """Negative data needs something to break: parameters or a body."""
    raw = DOCUMENT["paths"][op.path][op.method.lower()]
    return bool(raw.get("parameters") or raw.get("requestBody"))


CASES = [
    (op, mode)
    for op in OPERATIONS
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or _has_input(op)
]


@pytest.fixture(scope="module")
def fuzzed_api(serve_session: Serve) -> Api:
    return serve_session()


def test_served_document_is_the_fuzzed_one(fuzzed_api: Api):
    assert fuzzed_api.get("/openapi.json").json() == DOCUMENT
    assert len(OPERATIONS) >= 4 + 1 + 3 + 7 * 4 + 2 + 4


ENVOY_CLUSTER = "\n".join(
    [
        "'@type': type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name: fuzzed",
        "connectTimeout: 5s",
    ]
)
# The upload of a provided CA's certificate and key: a schema can say "a PEM string", not "a CA
# certificate whose key matches" (tests/api/test_provided_ca.py tests what it accepts).
NO_VALID_DATA = {("POST", "/meshes/{mesh}/ca/provided/certificates")}


def _as_the_url_says(case: schemathesis.Case) -> None:
    params = case.path_parameters or {}
    if case.method in ("PUT", "POST") and "mesh" in params:
        params["mesh"] = "default"
    if case.method == "PUT" and isinstance(case.body, dict):
        body: dict[str, Any] = case.body
        for key in ("mesh", "name"):
            if key in params and key in body:
                body[key] = params[key]
        conf = body.get("conf") if body.get("type") == "ProxyTemplate" else None
        for raw in (conf or {}).get("resources", []):
            raw["resource"] = ENVOY_CLUSTER
        logging = body.get("logging") if body.get("type") == "Mesh" else None
        if logging:
            _one_default_among_unique_backends(logging)
        mtls = body.get("mtls") if body.get("type") == "Mesh" else None
        if mtls and (mtls.get("ca") or {}).get("provided") is not None:
            mtls["ca"] = {"builtin": {}}  # a provided CA has no signing certificate here


def _one_default_among_unique_backends(logging: dict[str, Any]) -> None:
    names: list[str] = []
    for backend in logging.get("backends", []):
        while backend["name"] in names:
            backend["name"] += "-"
        names.append(backend["name"])
    if names:
        logging["defaultBackend"] = names[-1]
    else:
        logging.pop("defaultBackend", None)


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{op.label} {mode.value}" for op, mode in CASES]
)
def test_api_conforms_to_its_openapi_document(
    fuzzed_api: Api, operation: Any, mode: GenerationMode
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE:
            _as_the_url_says(case)
        excluded: list[Any] = []
        if (operation.method.upper(), operation.path) in NO_VALID_DATA:
            excluded = [openapi_checks.positive_data_acceptance]
        case.call_and_validate(
            base_url=fuzzed_api.url, session=fuzzed_api.http, excluded_checks=excluded
        )

    check()
