"""Fuzz the service's own OpenAPI schema (schemathesis): no input may cause a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES_PER_OPERATION = 60


@pytest.fixture(scope="module")
def api_schema(client):
    return schemathesis.openapi.from_dict(client.get("/docs.json").json())


@pytest.mark.parametrize(("method", "path"), [("POST", "/predict"), ("POST", "/explain")])
def test_fuzzed_requests_never_get_a_server_error(api_schema, server, method, path):
    operation = api_schema[path][method]
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case):
        response = case.call(base_url=server.url, timeout=30)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} for {case.body!r}: {response.text[:300]}")
        if response.status_code == 200:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        else:
            assert 400 <= response.status_code < 500

    run()
    assert not failures, failures[:3]


def test_health_and_model_fuzz_free(client):
    # GET endpoints take no input; after the fuzzing the server still answers.
    assert client.get("/readyz").status_code == 200
    assert client.get("/model").status_code == 200
