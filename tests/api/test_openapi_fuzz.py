"""Property-based fuzzing of the API against its own OpenAPI document (schemathesis): no 5xx,
and every status code, content type, header and body as documented. Bounded: a few examples
per operation, against the memory store over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks as openapi_checks

from services.api.openapi import build_openapi
from tests.api.conftest import Api, Serve

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 15

DOCUMENT = build_openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def fuzzed_api(serve_session: Serve) -> Api:
    return serve_session()


def test_served_document_is_the_fuzzed_one(fuzzed_api: Api):
    assert fuzzed_api.get("/openapi.json").json() == DOCUMENT
    assert len(OPERATIONS) >= 4 + 1 + 3 + 7 * 4 + 2 + 4


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_conforms_to_its_openapi_document(fuzzed_api: Api, operation: Any) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=fuzzed_api.url, session=fuzzed_api.http, checks=CHECKS)

    check()
