"""One exception hierarchy for the whole code base, and the one place that renders the error envelope.

Services raise `ApplicationError` subclasses; views never build error bodies by hand. The DRF exception handler
and the Django-level handlers (404/500 outside DRF) all go through `error_response`.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from paytrust.logs import request_id_var

logger = logging.getLogger("paytrust.errors")

INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
PERMISSION = "permission_error"
RATE_LIMIT = "rate_limit_error"
IDEMPOTENCY = "idempotency_error"
GATEWAY = "gateway_error"
API = "api_error"


class ApplicationError(Exception):
    status_code = 400
    error_type = INVALID_REQUEST
    code = "invalid_request"
    default_message = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ) -> None:
        self.message = message or self.default_message
        # More fields of the error object (e.g. a blocked payment's `payment` and `risk_reasons`); never secrets.
        self.extra = extra or {}
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.param = param
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationError(ApplicationError):
    status_code = 400
    code = "parameter_invalid"


class NotFound(ApplicationError):
    status_code = 404
    code = "resource_missing"
    default_message = "No such object."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class Unprocessable(ApplicationError):
    status_code = 422
    code = "unprocessable"


class AuthenticationError(ApplicationError):
    status_code = 401
    error_type = AUTHENTICATION
    code = "invalid_api_key"
    default_message = "Invalid API key provided."


class PermissionError_(ApplicationError):
    status_code = 403
    error_type = PERMISSION
    code = "insufficient_permissions"
    default_message = "This API key is not allowed to perform this request."


class RateLimited(ApplicationError):
    status_code = 429
    error_type = RATE_LIMIT
    code = "rate_limited"
    default_message = "Too many requests. Retry after the time given in Retry-After."


class IdempotencyError(ApplicationError):
    status_code = 409
    error_type = IDEMPOTENCY
    code = "idempotency_conflict"


class GatewayError(ApplicationError):
    """A payment gateway failed. `retryable` says whether the same call may succeed later."""

    status_code = 502
    error_type = GATEWAY
    code = "gateway_error"
    default_message = "The payment gateway returned an error."

    def __init__(self, message: str | None = None, *, retryable: bool = False, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retryable = retryable


class GatewayTimeout(GatewayError):
    status_code = 504
    code = "gateway_timeout"
    default_message = "The payment gateway did not answer in time."

    def __init__(self, message: str | None = None, **kwargs) -> None:
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)


class WebhookAuthError(ApplicationError):
    """An inbound gateway webhook's signature/token is missing or wrong (401; nothing is processed)."""

    status_code = 401
    error_type = AUTHENTICATION
    code = "webhook_signature_invalid"
    default_message = "The webhook signature is missing or invalid."


class WebhookPayloadError(ApplicationError):
    """An inbound gateway webhook's body is not the JSON the gateway's protocol defines (400)."""

    status_code = 400
    code = "webhook_payload_invalid"
    default_message = "The webhook payload is malformed."


def envelope(
    *, error_type: str, code: str, message: str, param: str | None = None, request_id: str | None = None
) -> dict:
    return {
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "request_id": request_id or request_id_var.get(),
        }
    }


def _first_drf_error(detail, path: str = "") -> tuple[str | None, str, str]:
    """Walk a DRF ValidationError detail to its first leaf: (param path, message, code).

    Items without errors (DRF reports `{}` for the valid items of a `many=True` list) are skipped, so the path
    names the item that failed: `items.1.amount`.
    """
    found = _find_leaf(detail, path)
    if found is None:
        return path or None, "Invalid value.", "parameter_invalid"
    return found


def _find_leaf(detail, path: str) -> tuple[str | None, str, str] | None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = path if key in ("non_field_errors", "__all__") else (f"{path}.{key}" if path else str(key))
            found = _find_leaf(value, sub)
            if found is not None:
                return found
        return None
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                found = _find_leaf(value, f"{path}.{index}" if path else str(index))
            else:
                found = _find_leaf(value, path)
            if found is not None:
                return found
        return None
    code = getattr(detail, "code", None) or "parameter_invalid"
    return path or None, str(detail), code


_DRF_CODE_MAP = {
    "required": "parameter_missing",
    "null": "parameter_missing",
    "blank": "parameter_missing",
    "invalid": "parameter_invalid",
    "unknown_field": "parameter_unknown",
}


def exception_handler(exc, context) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error leaves the API in the spec's envelope."""
    status, error_type, code, message, param, headers = _classify(exc)
    body = envelope(error_type=error_type, code=code, message=message, param=param)
    if isinstance(exc, ApplicationError) and exc.extra:
        body["error"].update({k: v for k, v in exc.extra.items() if k not in body["error"]})
    return Response(
        body,
        status=status,
        headers=headers,
    )


def _classify(exc) -> tuple[int, str, str, str, str | None, dict]:
    if isinstance(exc, ApplicationError):
        return exc.status_code, exc.error_type, exc.code, exc.message, exc.param, exc.headers
    if isinstance(exc, drf_exceptions.ValidationError):
        param, message, code = _first_drf_error(exc.detail)
        return 400, INVALID_REQUEST, _DRF_CODE_MAP.get(code, code), message, param, {}
    if isinstance(exc, drf_exceptions.ParseError):
        return (
            400,
            INVALID_REQUEST,
            "invalid_json",
            f"The request body is not valid JSON: {exc.detail}",
            None,
            {},
        )
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return 415, INVALID_REQUEST, "unsupported_media_type", "Send the body as application/json.", None, {}
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        message = (
            "No API key provided. Send it as `Authorization: Bearer <api key>` or `X-API-Key: <api key>`."
        )
        return 401, AUTHENTICATION, "api_key_required", message, None, {}
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return 401, AUTHENTICATION, "invalid_api_key", str(exc.detail), None, {}
    if isinstance(exc, drf_exceptions.PermissionDenied | DjangoPermissionDenied):
        return (
            403,
            PERMISSION,
            "insufficient_permissions",
            "This API key is not allowed to perform this request.",
            None,
            {},
        )
    if isinstance(exc, drf_exceptions.NotFound | Http404):
        return 404, INVALID_REQUEST, "resource_missing", "No such object.", None, {}
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return 405, INVALID_REQUEST, "method_not_allowed", str(exc.detail), None, {}
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return 406, INVALID_REQUEST, "not_acceptable", str(exc.detail), None, {}
    if isinstance(exc, drf_exceptions.Throttled):
        headers = {"Retry-After": str(exc.wait or 1)}
        return 429, RATE_LIMIT, "rate_limited", "Too many requests.", None, headers
    if isinstance(exc, drf_exceptions.APIException):
        return exc.status_code, INVALID_REQUEST, str(exc.default_code), str(exc.detail), None, {}
    from django.core.exceptions import RequestDataTooBig

    if isinstance(exc, RequestDataTooBig):
        return 413, INVALID_REQUEST, "request_too_large", "The request body is too large.", None, {}
    if database_unavailable(exc):
        return _service_unavailable(exc)
    logger.exception("unhandled error", exc_info=exc)
    return 500, API, "internal_error", "An internal error occurred. It has been logged.", None, {}


def database_unavailable(exc: BaseException | None) -> bool:
    """The database could not be reached or dropped the connection (server restart, failover, pool exhausted).

    The request's transaction was rolled back, so nothing was half-written: the client may simply retry."""
    from django.db import InterfaceError, InternalError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        return True
    # psycopg's own InternalError without a SQLSTATE is the client losing track of the protocol, as when PgBouncer
    # cuts a server connection mid-transaction (a primary restart): "received 2 results from command 'BEGIN'".
    # The connection is broken; as with any connection lost mid-request, a transaction cut during its COMMIT may
    # or may not have been committed, which is what the Idempotency-Key of a retried POST is for. A server's
    # internal_error (SQLSTATE XX000) stays a 500.
    cause = exc.__cause__ if isinstance(exc, InternalError) else None
    return cause is not None and getattr(cause, "sqlstate", "") is None


def _service_unavailable(exc: BaseException) -> tuple[int, str, str, str, str | None, dict]:
    logger.warning("database unavailable: %s", type(exc.__cause__ or exc).__name__, exc_info=exc)
    retry_after = str(settings.DB_UNAVAILABLE_RETRY_AFTER_SECONDS)
    message = "The service is temporarily unavailable (its database cannot be reached). Retry after a moment."
    return 503, API, "service_unavailable", message, None, {"Retry-After": retry_after}


def error_response(exc) -> JsonResponse:
    status, error_type, code, message, param, headers = _classify(exc)
    response = JsonResponse(
        envelope(error_type=error_type, code=code, message=message, param=param), status=status
    )
    for key, value in headers.items():
        response[key] = value
    return response


# Django-level handlers (for URLs outside DRF views, e.g. an unknown path).
def handler404(request, exception=None):
    return error_response(Http404())


def handler500(request):
    # Django calls this inside its `except` block: an unreachable database outside a DRF view (middleware, the
    # admin) is a 503 with Retry-After like inside one, not a 500.
    exc = sys.exc_info()[1]
    if database_unavailable(exc):
        return error_response(exc)
    return JsonResponse(
        envelope(
            error_type=API, code="internal_error", message="An internal error occurred. It has been logged."
        ),
        status=500,
    )


def handler403(request, exception=None):
    return error_response(DjangoPermissionDenied())


def handler400(request, exception=None):
    return error_response(ValidationError("Bad request."))
