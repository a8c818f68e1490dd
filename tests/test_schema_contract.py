"""The mismatches between /v1/schema and the server that schemathesis found (issue 11 point 14), one test each;
tests/test_schema_conformance.py fuzzes the whole schema."""

import re

import pytest
from django.test import Client

from apikeys.idempotency import validate_key
from paytrust.errors import ValidationError

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return Client().get("/v1/schema", HTTP_ACCEPT="application/json").json()


def _parameter(schema, path, method, name):
    return next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)


def _error(response, status=400):
    assert response.status_code == status, response.content
    return response.json()["error"]


@pytest.mark.parametrize(
    "path",
    ["/v1/invoices", "/v1/payments", "/v1/events", "/v1/webhook-endpoints", "/v1/gateway-accounts"],
)
def test_limit_is_documented_as_the_range_the_server_takes(api, schema, path):
    documented = _parameter(schema, path, "get", "limit")["schema"]
    assert (documented["type"], documented["minimum"], documented["maximum"]) == ("integer", 1, 100)
    for bad in ("", "0", "101", "1.0", "x"):
        assert _error(api.get(f"{path}?limit={bad}"))["param"] == "limit"
    assert api.get(f"{path}?limit=100").status_code == 200


def test_an_empty_cursor_is_not_a_cursor(api, schema):
    assert _parameter(schema, "/v1/invoices", "get", "cursor")["schema"]["format"] == "cursor"
    assert _error(api.get("/v1/invoices?cursor="))["param"] == "cursor"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/invoices?status=", "status"),
        ("/v1/invoices?currency=", "currency"),
        ("/v1/invoices?created_gte=", "created_gte"),
        ("/v1/payments?status=", "status"),
        ("/v1/events?type=", "type"),
        ("/v1/gateway-accounts?enabled=", "enabled"),
        ("/v1/gateway-accounts?gateway=", "gateway"),
        ("/v1/reports/financial?format=CSV", "format"),
        ("/v1/reports/financial?currency=idr", "currency"),
    ],
)
def test_a_value_outside_the_documented_enum_or_format_is_a_400(api, path, param):
    # An empty value used to mean "absent" although the schema's enum/format refuses it; `CSV`/`idr` were
    # accepted although the enum says `csv`/`IDR`.
    assert _error(api.get(path))["param"] == param


def test_an_offset_beyond_postgresqls_range_is_not_a_500(api):
    # RFC 3339 allows +21:28; PostgreSQL refuses offsets beyond ±15:59 (DataError, 500 before).
    assert api.get("/v1/invoices?created_lt=4336-03-07T16%3A46%3A01.7%2B21%3A28").status_code == 200


@pytest.mark.parametrize("version", ["9", " 09", "pain.001.001.09"])
def test_iso20022_version_takes_exactly_the_documented_values(api, schema, version):
    path = "/v1/invoices/{invoice_id}/payment-initiation"
    assert set(_parameter(schema, path, "get", "version")["schema"]["enum"]) == {"09", "03"}
    assert (
        _error(api.get("/v1/invoices/inv_x/payment-initiation", {"version": version}))["param"] == "version"
    )


def test_idempotency_key_pattern_is_exactly_what_the_server_accepts(schema):
    documented = _parameter(schema, "/v1/invoices", "post", "Idempotency-Key")["schema"]
    assert (documented["minLength"], documented["maxLength"]) == (1, 255)
    pattern = re.compile(documented["pattern"])
    # A header value reaches the server as ISO-8859-1 text: every character it can hold, one by one.
    for code in range(256):
        char = chr(code)
        try:
            validate_key(char)
            accepted = True
        except ValidationError:
            accepted = False
        assert bool(pattern.fullmatch(char)) == accepted, hex(code)


def test_request_bodies_refuse_unknown_fields_and_say_so(schema):
    requests = {name: c for name, c in schema["components"]["schemas"].items() if name.endswith("Request")}
    assert "InvoiceCreateInputRequest" in requests and "LineItemInputRequest" in requests
    for name, component in requests.items():
        assert component["additionalProperties"] is False, name
        # StrictSerializer's docstring (about its implementation) is no longer every body's description
        assert "deep-copies" not in component.get("description", ""), name


def test_metadata_and_credentials_are_objects_not_nullable(api, schema):
    components = schema["components"]["schemas"]
    metadata = components["InvoiceCreateInputRequest"]["properties"]["metadata"]
    assert metadata["type"] == "object" and not metadata.get("nullable")
    assert metadata["additionalProperties"] == {"type": "string", "maxLength": 500}
    credentials = components["GatewayAccountCreateInputRequest"]["properties"]["credentials"]
    assert credentials["type"] == "object" and not credentials.get("nullable")
    body = {
        "currency": "IDR",
        "line_items": [{"name": "A", "quantity": 1, "unit_price": "1000"}],
        "metadata": None,
    }
    assert _error(api.post("/v1/invoices", body, format="json"))["param"] == "metadata"
    assert (
        _error(api.post("/v1/gateway-accounts", {"gateway": "sandbox", "credentials": None}, format="json"))[
            "param"
        ]
        == "credentials"
    )


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/webhook-endpoints",
            {"url": "http://localhost:9/", "enabled_events": ["*"], "enabled": 0},
            "enabled",
        ),
        (
            "/v1/invoices",
            {"currency": "IDR", "line_items": [{"name": "A", "quantity": "2", "unit_price": "1"}]},
            "line_items.0.quantity",
        ),
        (
            "/v1/invoices",
            {"currency": "IDR", "line_items": [{"name": 5, "quantity": 2, "unit_price": "1"}]},
            "line_items.0.name",
        ),
        (
            "/v1/invoices",
            {"currency": "IDR", "line_items": [{"name": "A", "quantity": True, "unit_price": "1"}]},
            "line_items.0.quantity",
        ),
    ],
)
def test_a_value_of_another_json_type_is_refused_not_coerced(api, path, body, param):
    # DRF turns 0 into false, "2" into 2 and 5 into "5"; the schema says boolean, integer, string.
    error = _error(api.post(path, body, format="json"))
    assert (error["param"], error["code"]) == (param, "parameter_invalid")


def test_report_period_parameters_are_dates_or_date_times(schema):
    start = _parameter(schema, "/v1/reports/financial", "get", "start")
    assert {branch["format"] for branch in start["schema"]["anyOf"]} == {"date-time", "date"}
    assert "Required with end" in start["description"]
