"""Hostile or odd input anywhere in the API gets a 4xx envelope, never a 500 (found by review: NUL characters,
impossible dates, forged cursors, deeply nested JSON)."""

import json

import pytest
from rest_framework.test import APIClient

from invoices.models import Invoice
from tests.factories import GatewayAccountFactory


@pytest.fixture
def sandbox(merchant):
    return GatewayAccountFactory(merchant=merchant)


def _invoice_body(**extra):
    body = {"currency": "IDR", "line_items": [{"name": "W", "quantity": 1, "unit_price": "1000"}]}
    body.update(extra)
    return body


def _error(response, status):
    assert response.status_code == status, response.content
    return response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_invoice_body(metadata={"k": "a\u0000b"}), "metadata.k"),
        (_invoice_body(metadata={"k\u0000": "v"}), "metadata"),
        (_invoice_body(description="x\u0000"), "description"),
        (
            _invoice_body(line_items=[{"name": "W\u0000", "quantity": 1, "unit_price": "1"}]),
            "line_items.0.name",
        ),
    ],
)
def test_nul_characters_in_the_body_are_a_400_naming_the_field(api, sandbox, body, param):
    error = _error(api.post("/v1/invoices", body, format="json", HTTP_IDEMPOTENCY_KEY="nul-1"), 400)
    assert (error["code"], error["param"]) == ("invalid_characters", param)
    assert not Invoice.objects.exists()
    # the refused request was not stored under the idempotency key: the corrected retry goes through
    assert (
        api.post("/v1/invoices", _invoice_body(), format="json", HTTP_IDEMPOTENCY_KEY="nul-1").status_code
        == 201
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/v1/invoices/inv_%00",
        "/v1/payments/pay_%00",
        "/v1/invoices?gateway=a%00b",
        "/v1/invoices?external_id=%00",
    ],
)
def test_nul_in_the_url_is_a_400_with_or_without_a_valid_key(api, path):
    assert _error(api.get(path), 400)["code"] == "invalid_characters"
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Bearer pt_test_AAAAAAAAAAAA_" + "B" * 32)
    assert _error(stranger.get(path), 400)["code"] == "invalid_characters"


@pytest.mark.django_db
def test_nul_in_an_inbound_webhook_url_is_a_400():
    response = APIClient().post("/v1/webhooks/xendit/gwa_%00", {}, format="json")
    assert _error(response, 400)["code"] == "invalid_characters"


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["2024-02-30", "2024-02-30T00:00:00Z", "2024-13-01"])
def test_impossible_dates_in_list_filters_are_a_400(api, value):
    assert _error(api.get("/v1/invoices", {"created_gte": value}), 400)["param"] == "created_gte"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "MjAyNC0wMS0wMVQwMDowMDowMCswMDowMHwA",  # 2024-01-01T00:00:00+00:00|\x00
        "OTk5OS0xMi0zMVQyMzo1OTo1OS0yMzowMHxh",  # 9999-12-31T23:59:59-23:00|a (past year 9999 in UTC)
        "not-base64!",
    ],
)
@pytest.mark.parametrize("path", ["/v1/invoices", "/v1/payments", "/v1/events"])
def test_forged_cursors_are_a_400(api, cursor, path):
    assert _error(api.get(path, {"cursor": cursor}), 400)["code"] == "cursor_invalid"


@pytest.mark.django_db
@pytest.mark.parametrize("idempotency_key", [None, "deep-1"])
def test_deeply_nested_json_is_a_400(api, idempotency_key):
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    body = "[" * 5000 + "]" * 5000
    response = api.post("/v1/invoices", body, content_type="application/json", **headers)
    assert _error(response, 400)["code"] == "invalid_json"


@pytest.mark.django_db
def test_a_json_array_instead_of_an_object_is_a_400(api, sandbox):
    response = api.post("/v1/invoices", json.dumps([_invoice_body()]), content_type="application/json")
    assert response.status_code == 400


LONE_SURROGATE = (
    '"\\ud800"'  # JSON text: a lone high surrogate, which no UTF-8 string (and no PostgreSQL) can hold
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "raw_body", "param"),
    [
        ("/v1/invoices", '{"currency": "IDR", "line_items": [], "metadata": {"k": %s}}', "metadata.k"),
        ("/v1/invoices", '{"currency": "IDR", "description": %s, "line_items": []}', "description"),
        (
            "/v1/invoices",
            '{"currency": "IDR", "line_items": [{"name": %s, "quantity": 1}]}',
            "line_items.0.name",
        ),
        ("/v1/invoices", '{"currency": "IDR", "line_items": [], "metadata": {%s: "v"}}', "metadata"),
        ("/v1/webhook-endpoints", '{"url": "https://example.com/h", "description": %s}', "description"),
        ("/v1/gateway-accounts", '{"gateway": "sandbox", "metadata": {"a": %s}}', "metadata.a"),
    ],
)
def test_lone_surrogates_in_the_body_are_a_400_naming_the_field(api, sandbox, path, raw_body, param):
    body = raw_body % LONE_SURROGATE
    error = _error(api.post(path, body, content_type="application/json"), 400)
    assert (error["code"], error["param"]) == ("invalid_characters", param)
    assert not Invoice.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"start": "9999-12-31T00:00:00Z", "end": "9999-12-31T23:00:00-05:00"}, "start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:00:00-05:00"}, "end"),
        ({"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01T00:00:00Z"}, "start"),
    ],
)
def test_report_dates_at_the_ends_of_the_calendar_are_a_400(api, query, param, fmt):
    response = api.get("/v1/reports/financial", {**query, "format": fmt})
    error = _error(response, 400)
    assert error["param"] == param


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("charset", "encoded_value"),
    [
        ("utf-7", b'"+2AA-"'),  # U+D800 in UTF-7, no JSON escape anywhere
        ("unicode_escape", b'"\\U0000dc00"'),  # U+DC00 through the codec's own escape, not JSON's
    ],
)
def test_a_lone_surrogate_in_another_charset_is_a_400_too(api, sandbox, charset, encoded_value):
    """The escape-only shortcut of the parser holds for UTF-8 alone: any other charset Django accepts is walked."""
    body = b'{"currency": "IDR", "line_items": [], "metadata": {"a": ' + encoded_value + b"}}"
    response = api.post("/v1/invoices", body, content_type=f"application/json; charset={charset}")
    error = _error(response, 400)
    assert (error["code"], error["param"]) == ("invalid_characters", "metadata.a")
