"""/v1/schema is a valid OpenAPI 3 document that documents every endpoint with its errors."""

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/v1/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    return response.json()


def _resolve(schema, ref: str):
    node = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_schema_validates_against_the_openapi_3_json_schema(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # drf-spectacular's bundled official OpenAPI 3.0 JSON schema; raises if invalid


def test_every_reference_resolves_and_every_operation_has_responses(schema):
    assert schema["info"]["title"] and schema["paths"]
    for ref in set(_refs(schema)):
        assert ref.startswith("#/"), ref
        _resolve(schema, ref)  # KeyError if dangling
    for path, item in schema["paths"].items():
        assert path.startswith("/"), path
        for method, operation in item.items():
            if method in METHODS:
                assert operation["responses"], f"{method} {path}"
                assert operation.get("operationId"), f"{method} {path}"


def test_error_envelope_component_describes_the_spec_shape(schema):
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    error = _resolve(schema, envelope["properties"]["error"]["$ref"])
    assert set(error["properties"]) == {
        "type",
        "code",
        "message",
        "param",
        "request_id",
        "payment",
        "risk_reasons",
    }
    assert set(error["required"]) == {
        "type",
        "code",
        "message",
        "param",
        "request_id",
    }  # the last two: 402 only
    assert error["properties"]["param"].get("nullable") is True
    types = _resolve(schema, error["properties"]["type"]["$ref"])["enum"]
    assert "rate_limit_error" in types and "idempotency_error" in types


def _error_ref(operation, status: str) -> str:
    return operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]


def test_api_key_endpoints_document_their_errors_and_headers(schema):
    paths = schema["paths"]
    expected = {
        ("/v1/api-keys", "get"): {"401", "403", "429"},
        ("/v1/api-keys", "post"): {"400", "401", "403", "409", "415", "422", "429"},
        ("/v1/api-keys/{key_id}", "delete"): {"401", "403", "404"},
        ("/v1/api-keys/{key_id}/rotate", "put"): {"400", "403", "404", "409"},
        ("/v1/api-keys/audit", "get"): {"400", "403"},
        ("/v1/merchant", "get"): {"401", "429", "500"},
    }
    for (path, method), statuses in expected.items():
        operation = paths[path][method]
        for status in statuses:
            assert _error_ref(operation, status) == "#/components/schemas/ErrorEnvelope", (
                path,
                method,
                status,
            )
    create = paths["/v1/api-keys"]["post"]
    assert "201" in create["responses"]
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"] if p["in"] == "header"]
    headers = create["responses"]["201"]["headers"]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Idempotent-Replayed"} <= set(
        headers
    )
    assert "Retry-After" in create["responses"]["429"]["headers"]
    audit_params = {p["name"] for p in paths["/v1/api-keys/audit"]["get"]["parameters"]}
    assert {"start", "end", "key", "action", "limit", "cursor"} <= audit_params


def test_a_viewset_list_is_documented_as_its_envelope_not_as_an_array(schema):
    # drf-spectacular takes a viewset's `list` action for a bare array; our lists are {data, has_more, next_cursor}.
    for path in (
        "/v1/api-keys",
        "/v1/api-keys/audit",
        "/v1/gateway-accounts",
        "/v1/webhook-endpoints",
        "/v1/events",
    ):
        body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        envelope = _resolve(schema, body["$ref"]) if "$ref" in body else body
        assert envelope.get("type") == "object" and "data" in envelope["properties"], path
        assert envelope["properties"]["data"]["type"] == "array", path


def test_api_key_authentication_is_declared(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert {"bearerAuth": []} in schema["paths"]["/v1/merchant"]["get"]["security"]


def test_the_validator_does_reject_a_broken_document(schema):
    import jsonschema

    broken = {key: value for key, value in schema.items() if key != "info"}
    with pytest.raises(jsonschema.ValidationError):
        validate_schema(broken)


def test_risk_is_documented(schema):
    """Risk (docs/adr/0053): the payment object's score, reasons and review; initiation's `risk` input and its 402;
    GET/PATCH /v1/risk-settings with the PATCH's 400."""
    payment = schema["components"]["schemas"]["PaymentOutput"]["properties"]
    assert {"risk_score", "risk_reasons", "review"} <= set(payment)
    initiation = schema["paths"]["/v1/invoices/{invoice_id}/payments"]["post"]
    assert "402" in initiation["responses"]
    body = _resolve(schema, initiation["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    risk = _resolve(
        schema,
        body["properties"]["risk"]["allOf"][0]["$ref"]
        if "allOf" in body["properties"]["risk"]
        else body["properties"]["risk"]["$ref"],
    )
    assert set(risk["properties"]) == {"customer_ip", "device_id"}
    assert risk["properties"]["device_id"]["maxLength"] == 128
    settings = schema["paths"]["/v1/risk-settings"]
    assert set(settings) >= {"get", "patch"} and "400" in settings["patch"]["responses"]
