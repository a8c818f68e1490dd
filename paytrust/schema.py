"""OpenAPI (drf-spectacular) pieces shared by every API view.

- `ErrorEnvelope`: the reusable schema component of the error body (component name `ErrorEnvelope`).
- `error_responses(400, 404, ...)`: `{status: OpenApiResponse(ErrorEnvelope, description)}` for `@extend_schema`.
- `ApiAutoSchema`: the schema class of `apikeys.viewsets.ApiView`. It adds to every operation the errors every API
  view can return (400, 401, 429, 500; 409/422 idempotency errors on POST), the `Idempotency-Key` request header
  on POST, and the `X-Request-Id` / `X-RateLimit-*` / `Retry-After` / `Idempotent-Replayed` response headers —
  so a view's `@extend_schema` lists only its success body and its own errors (404, 409, 422, …). A request body
  of a `StrictSerializer` is documented with `additionalProperties: false` (the server refuses unknown fields).
- `LIMIT_PARAMETER`, `CURSOR_PARAMETER`: the query parameters of every list (paytrust/pagination.py).

The schema is the contract: it says exactly what the server accepts, and tests/test_schema_conformance.py
(schemathesis) fails when the two drift apart (docs/adr/0044-schema-conformance-with-schemathesis.md).
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from paytrust.money import RATE_MAX_DECIMALS
from paytrust.pagination import DEFAULT_LIMIT, MAX_LIMIT
from paytrust.serializers import StrictSerializer

ERROR_TYPES = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "rate_limit_error",
    "idempotency_error",
    "gateway_error",
    "api_error",
]

ERROR_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, unknown field, invalid parameter (`param` names it). No string may "
    "contain U+0000 or a lone UTF-16 surrogate.",
    401: "Missing, malformed, unknown, revoked or expired API key.",
    402: "The payment was blocked.",
    403: "The API key is not allowed to do this (e.g. the endpoint needs the `admin` scope).",
    404: "No such object (or it belongs to another merchant or mode).",
    405: "Method not allowed.",
    409: "Conflict with the object's state, or a request with the same Idempotency-Key is still running.",
    413: "The request body is too large.",
    415: "The body is not application/json.",
    422: "The request is well-formed but cannot be processed, or the Idempotency-Key was used with another body.",
    429: "Rate limit exceeded; retry after `Retry-After` seconds.",
    500: "Internal error (logged; no details in the response).",
    502: "The payment gateway returned an error.",
    504: "The payment gateway did not answer in time.",
}


class RiskReason(serializers.Serializer):
    code = serializers.CharField(
        help_text="e.g. `email_blocked`, `velocity_email_hour`, `amount_over_threshold`."
    )
    message = serializers.CharField()


class ErrorObject(serializers.Serializer):
    type = serializers.ChoiceField(choices=ERROR_TYPES)
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `parameter_invalid`.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    param = serializers.CharField(
        allow_null=True, help_text="Path of the offending parameter, e.g. `line_items.0.amount`."
    )
    request_id = serializers.CharField(help_text="Same value as the X-Request-Id response header.")
    payment = serializers.CharField(
        required=False,
        help_text="402 `payment_blocked` only: the id of the blocked (failed) payment attempt.",
    )
    risk_reasons = RiskReason(
        many=True, required=False, help_text="402 `payment_blocked` only: why the risk check blocked it."
    )


class ErrorEnvelope(serializers.Serializer):
    """Every error response of the API has this body."""

    error = ErrorObject()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """`@extend_schema(responses={201: Out, **error_responses(404, 409)})`."""
    return {
        status: OpenApiResponse(response=ErrorEnvelope, description=ERROR_DESCRIPTIONS.get(status, "Error."))
        for status in statuses
    }


_RATE_LIMIT_HEADERS = [
    OpenApiParameter(
        "X-RateLimit-Limit",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="Requests allowed per rolling minute for this API key.",
    ),
    OpenApiParameter(
        "X-RateLimit-Remaining",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="Requests left in the current rolling minute.",
    ),
    OpenApiParameter(
        "X-RateLimit-Reset",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="Unix time (seconds) at which the oldest counted request leaves the window.",
    ),
    OpenApiParameter(
        "X-Request-Id",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=True,
        description="The caller's X-Request-Id if it sent a valid one, else a new id. Also in logs and errors.",
    ),
]
_RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=["429"],
    description="Seconds to wait before retrying.",
)
# apikeys.idempotency.validate_key: 1-255 characters that Python calls printable. A header value reaches the
# server as ISO-8859-1 text, where that is exactly U+0020-U+007E, U+00A1-U+00AC and U+00AE-U+00FF (not the
# controls, the no-break space U+00A0 or the soft hyphen U+00AD).
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e\xa1-\xac\xae-\xff]+$"
_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "1 to 255 printable characters (e.g. a UUID). A retry with the same key and body within 24 hours "
        "returns the stored response with `Idempotent-Replayed: true` instead of doing the work again."
    ),
)
_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=["200", "201", "202"],
    enum=["true"],
    description="Present when this response is a replay of a stored response for the same Idempotency-Key.",
)


# paytrust.money: an amount is a plain decimal string (at most 40 characters; no sign, exponent or "+") or a JSON
# number, never negative; how many decimals depends on the currency. A rate is a fraction 0–1 with at most
# RATE_MAX_DECIMALS significant decimals (trailing zeros are exact).
AMOUNT_SCHEMA = {
    "oneOf": [
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "maxLength": 40, "example": "150000"},
        {"type": "number", "minimum": 0},
    ]
}
POSITIVE_AMOUNT_SCHEMA = {
    "oneOf": [
        {
            "type": "string",
            "pattern": r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$",
            "maxLength": 40,
            "example": "50000",
        },
        {"type": "number", "minimum": 0, "exclusiveMinimum": True},
    ]
}
RATE_SCHEMA = {
    "oneOf": [
        {
            "type": "string",
            "pattern": rf"^(0*1(\.0+)?|0+(\.[0-9]{{1,{RATE_MAX_DECIMALS}}}0*)?)$",
            "maxLength": 40,
            "example": "0.11",
        },
        {"type": "number", "minimum": 0, "maximum": 1},
    ]
}

# A CharField that may not be blank: DRF strips surrounding whitespace first, so it needs a non-space character.
NOT_BLANK_PATTERN = r"\S"

LIMIT_PARAMETER = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    OpenApiParameter.QUERY,
    description=f"Page size: 1–{MAX_LIMIT}, default {DEFAULT_LIMIT}.",
)
# An opaque token only the server makes: the format names it (OpenAPI formats are open-ended), so a client or a
# fuzzer knows that not every string is a cursor (tests/test_schema_conformance.py registers a strategy for it).
CURSOR_PARAMETER = OpenApiParameter(
    "cursor",
    {"type": "string", "format": "cursor"},
    OpenApiParameter.QUERY,
    description="Opaque: the `next_cursor` of the previous page.",
)
PAGINATION_PARAMETERS = [LIMIT_PARAMETER, CURSOR_PARAMETER]
# paytrust.params.query_datetime: an RFC 3339 date-time, or a date (its midnight UTC).
QUERY_DATETIME_SCHEMA = {
    "type": "string",
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
}


class ApiAutoSchema(AutoSchema):
    def get_override_parameters(self):
        params = [*super().get_override_parameters(), *_RATE_LIMIT_HEADERS, _RETRY_AFTER]
        if self.method == "POST":
            params += [_IDEMPOTENCY_KEY, _REPLAYED]
        return params

    def _default_error_statuses(self) -> list[int]:
        statuses = [400, 401, 429, 500]
        if self.method == "POST":
            statuses += [409, 422]
        if self.method in ("POST", "PUT", "PATCH"):
            statuses += [413, 415]
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        for status, response in error_responses(*self._default_error_statuses()).items():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    response, str(status), direction=direction
                )
        return responses

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(schema, dict)
            and isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & set(schema)
        ):
            schema["pattern"] = NOT_BLANK_PATTERN  # DRF strips the value, then refuses it empty
        if isinstance(field, serializers.ListSerializer) and isinstance(schema, dict):
            # drf-spectacular leaves out the bounds of a nested `many=True` serializer (`fees`).
            if field.min_length is not None:
                schema.setdefault("minItems", field.min_length)
            if field.max_length is not None:
                schema.setdefault("maxItems", field.max_length)
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        if direction == "request" and issubclass(cls, StrictSerializer):
            schema["additionalProperties"] = False
            for name, constraints in cls.schema_constraints.items():
                field_schema = schema["properties"][name]
                if "enum" in constraints:  # the enum says it all
                    for keyword in ("pattern", "minLength", "maxLength"):
                        field_schema.pop(keyword, None)
                field_schema.update(constraints)
        if not cls.__doc__:
            # drf-spectacular reads an inherited docstring (e.g. StrictSerializer's, about its implementation).
            schema.pop("description", None)
        return schema


# One tag per resource, from the URL (the sections of /docs). Longest prefix first: /v1/invoices/{id}/payments is
# the payments resource, the rest of /v1/invoices the invoices (their ISO 20022 exports included).
RESOURCE_TAGS = [
    ("/v1/invoices/{invoice_id}/payments", "payments"),
    ("/v1/invoices", "invoices"),
    ("/v1/payments/{payment_id}/refunds", "refunds"),
    ("/v1/payments", "payments"),
    ("/v1/refunds", "refunds"),
    ("/v1/gateway-accounts", "gateway accounts"),
    ("/v1/webhooks", "inbound notifications"),
    ("/v1/webhook-endpoints", "outbound events and endpoints"),
    ("/v1/events", "outbound events and endpoints"),
    ("/v1/api-keys", "API keys"),
    ("/v1/reports", "reports"),
    ("/v1/balance", "balance"),
    ("/v1/merchant", "merchant"),
    ("/v1/risk-settings", "risk"),
]


def resource_tags_hook(result, generator, request, public):
    """drf-spectacular postprocessing hook: tag every operation with its resource (RESOURCE_TAGS)."""
    for path, operations in result.get("paths", {}).items():
        tag = next(
            (tag for prefix, tag in RESOURCE_TAGS if path == prefix or path.startswith(prefix + "/")), None
        )
        if tag is None:
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["tags"] = [tag]
    result["tags"] = [{"name": tag} for tag in dict.fromkeys(tag for _, tag in RESOURCE_TAGS)]
    return result
