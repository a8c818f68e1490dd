"""OpenAPI (drf-spectacular) pieces shared by every API view.

- `ErrorEnvelope`: the reusable schema component of the error body (component name `ErrorEnvelope`).
- `error_responses(400, 404, ...)`: `{status: OpenApiResponse(ErrorEnvelope, description)}` for `@extend_schema`.
- `ApiAutoSchema`: the schema class of `apikeys.viewsets.ApiView`. It adds to every operation the errors every API
  view can return (400, 401, 429, 500; 409/422 idempotency errors on POST), the `Idempotency-Key` request header
  on POST, and the `X-Request-Id` / `X-RateLimit-*` / `Retry-After` / `Idempotent-Replayed` response headers —
  so a view's `@extend_schema` lists only its success body and its own errors (404, 409, 422, …).
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

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
    400: "Invalid request: malformed JSON, unknown field, invalid parameter (`param` names it).",
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


class ErrorObject(serializers.Serializer):
    type = serializers.ChoiceField(choices=ERROR_TYPES)
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `parameter_invalid`.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    param = serializers.CharField(
        allow_null=True, help_text="Path of the offending parameter, e.g. `line_items.0.amount`."
    )
    request_id = serializers.CharField(help_text="Same value as the X-Request-Id response header.")


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
_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 255 characters. A retry with the same key and body within 24 hours returns the stored "
        "response with `Idempotent-Replayed: true` instead of doing the work again."
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
