"""Every error leaves the service in the spec's envelope, with the right status and `param`, never a trace."""

import pytest
from django.test import Client
from rest_framework import serializers

from paytrust.serializers import MetadataField, StrictSerializer

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls")]

ERROR_KEYS = {"type", "code", "message", "param", "request_id"}


def _error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS
    assert body["error"]["request_id"] == response["X-Request-Id"]
    return body["error"]


def test_unknown_path_gets_404_envelope():
    error = _error(Client().get("/v1/nothing-here"), 404)
    assert (error["type"], error["code"]) == ("invalid_request_error", "resource_missing")


def test_wrong_method_on_an_api_view_gets_405_envelope(api):
    error = _error(api.patch("/v1/merchant", {}, format="json"), 405)
    assert error["code"] == "method_not_allowed"


def test_wrong_method_on_an_ops_endpoint_gets_405_envelope():
    response = Client().post("/healthz")
    error = _error(response, 405)
    assert error["code"] == "method_not_allowed" and "GET" in response["Allow"]


def test_non_json_body_gets_415(api):
    error = _error(api.post("/test/work", "name=x", content_type="application/x-www-form-urlencoded"), 415)
    assert error["code"] == "unsupported_media_type"


def test_oversized_body_gets_413_before_parsing(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    error = _error(api.post("/test/work", {"name": "x" * 2000}, format="json"), 413)
    assert error["code"] == "request_too_large"


def test_malformed_json_gets_400(api):
    error = _error(api.post("/test/work", '{"name": "x",', content_type="application/json"), 400)
    assert error["code"] == "invalid_json" and error["type"] == "invalid_request_error"


def test_nan_is_not_json(api):
    error = _error(api.post("/test/work", '{"name": NaN}', content_type="application/json"), 400)
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"name": "x", "surprise": 1}, "surprise", "parameter_unknown"),
        ({}, "name", "parameter_missing"),
        ({"name": "x" * 11}, "name", "max_length"),
        ({"name": "x", "items": [{"amount": "1.00"}, {"amount": "nope"}]}, "items.1.amount", "invalid"),
        ({"name": "x", "items": [{"amount": "1.00", "extra": True}]}, "items.0.extra", "parameter_unknown"),
        ({"name": "x", "metadata": {"k": 1}}, "metadata", "invalid"),
    ],
)
def test_validation_errors_name_the_param(api, body, param, code):
    error = _error(api.post("/test/work", body, format="json"), 400)
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert error["code"] in (code, "parameter_invalid")


def test_500_in_an_api_view_renders_the_envelope_without_details(api):
    response = api.get("/test/crash")
    error = _error(response, 500)
    assert (error["type"], error["code"]) == ("api_error", "internal_error")
    text = response.content.decode()
    for leak in ("boom", "SELECT", "secret.py", "Traceback"):
        assert leak not in text


def test_500_in_a_plain_django_view_renders_the_envelope_without_details():
    response = Client(raise_request_exception=False).get("/test/plain-crash")
    error = _error(response, 500)
    assert error["type"] == "api_error"
    assert "hunter2" not in response.content.decode() and "Traceback" not in response.content.decode()


def test_request_id_is_echoed_when_safe_and_replaced_when_not():
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-Id"] == "abc-123"
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-Id"]
    assert replaced.startswith("req_") and "\n" not in replaced
    assert Client().get("/healthz")["X-Request-Id"].startswith("req_")


def test_missing_and_malformed_keys_get_401():
    assert _error(Client().get("/v1/merchant"), 401)["code"] == "api_key_required"
    error = _error(Client().get("/v1/merchant", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz"), 401)
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
    assert (
        _error(Client().get("/v1/merchant", HTTP_X_API_KEY="pt_test_short"), 401)["code"] == "invalid_api_key"
    )


# --- metadata rules (paytrust/serializers.py) -------------------------------------------------------------


class _WithMetadata(StrictSerializer):
    metadata = MetadataField()


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 41: "v"},
        {"": "v"},
        {"k": "v" * 501},
        {"k": 1},
        {"k": None},
        {"k": {"nested": "x"}},
        ["not", "an", "object"],
        "string",
    ],
)
def test_metadata_rejects_what_the_spec_forbids(metadata):
    serializer = _WithMetadata(data={"metadata": metadata})
    assert not serializer.is_valid()
    assert "metadata" in serializer.errors


def test_metadata_accepts_the_limits():
    metadata = {("k" * 38 + f"{i:02d}"): "v" * 500 for i in range(50)}
    serializer = _WithMetadata(data={"metadata": metadata})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["metadata"] == metadata


def test_strict_serializer_rejects_unknown_fields_at_top_level():
    serializer = _WithMetadata(data={"metadata": {}, "other": 1})
    with pytest.raises(serializers.ValidationError) as exc:
        serializer.is_valid(raise_exception=True)
    assert "other" in exc.value.detail


def _django_internal_error(cause: Exception):
    from django.db import InternalError

    exc = InternalError(str(cause))
    exc.__cause__ = cause
    return exc


def test_a_client_protocol_error_after_a_cut_connection_is_503_not_500():
    """PgBouncer cutting a server connection mid-transaction (a primary restart) left psycopg with "received 2
    results from command 'BEGIN'" (seen in tests/cluster): a broken connection, answered 503 with Retry-After."""
    import psycopg

    from paytrust.errors import database_unavailable

    assert database_unavailable(
        _django_internal_error(psycopg.InternalError("received 2 results from command 'BEGIN'"))
    )
    # A server-side internal_error (SQLSTATE XX000) is a real fault: still a 500.
    server_side = psycopg.errors.lookup("XX000")("something broke inside the server")
    assert not database_unavailable(_django_internal_error(server_side))
