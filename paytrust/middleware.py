"""Request context: X-Request-Id, body size limit, error envelope safety net, one JSON access-log line per request,
and the request latency histogram. Django's browser-only middleware, skipped for the JSON API (end of file)."""

import logging
import re
import time
import uuid
from http import HTTPStatus

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.core.exceptions import RequestDataTooBig
from django.middleware.csrf import CsrfViewMiddleware as _CsrfViewMiddleware

from paytrust import metrics
from paytrust.errors import (
    API,
    AUTHENTICATION,
    PERMISSION,
    RATE_LIMIT,
    ApplicationError,
    ValidationError,
    error_response,
)
from paytrust.logs import merchant_var, request_id_var

access_log = logging.getLogger("paytrust.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")
# Error pages of these prefixes stay HTML (the Django admin, the sandbox checkout and the bank-transfer instructions
# pages are browser UIs).
_HTML_PREFIXES = ("/admin/", "/sandbox/", "/bank-transfer/")


def _as_envelope(response, request):
    """Turn a non-JSON error response (e.g. Django's 405 from require_GET, a CSRF 403) into the error envelope."""
    status = response.status_code
    content_type = response.get("Content-Type", "")
    if status < 400 or "json" in content_type or request.path.startswith(_HTML_PREFIXES):
        return response
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    error = ApplicationError(
        f"{reason}.", code=reason.lower().replace(" ", "_").replace("-", "_"), status_code=status
    )
    error.error_type = {401: AUTHENTICATION, 403: PERMISSION, 429: RATE_LIMIT}.get(
        status, API if status >= 500 else error.error_type
    )
    if status >= 500:
        error.message, error.code = "An internal error occurred. It has been logged.", "internal_error"
    wrapped = error_response(error)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if response.has_header(header):
            wrapped[header] = response[header]
    return wrapped


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else f"req_{uuid.uuid4().hex}"
        request.request_id = request_id
        rid_token = request_id_var.set(request_id)
        mer_token = merchant_var.set(None)
        try:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                response = error_response(RequestDataTooBig())
            elif "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
                # No id, filter or cursor can contain NUL, and PostgreSQL refuses it in text: a 400 here instead
                # of a database error later (and nothing reaches the audit log or the ORM).
                response = error_response(
                    ValidationError("The URL must not contain the NUL character.", code="invalid_characters")
                )
            else:
                response = _as_envelope(self.get_response(request), request)
            response["X-Request-Id"] = request_id
            duration = time.perf_counter() - started
            match = getattr(request, "resolver_match", None)
            route = ("/" + match.route) if match and match.route else None
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 2),
                    "merchant_id": merchant_var.get(),
                },
            )
            metrics.observe_request(
                method=request.method,
                route=route or "unmatched",
                status=response.status_code,
                seconds=duration,
            )
            metrics.db_pool_observed()
            return response
        finally:
            request_id_var.reset(rid_token)
            merchant_var.reset(mer_token)


# ---- browser-only middleware ----------------------------------------------------------------------------------
# Sessions, CSRF, the session user and messages serve the browser pages (the admin, the sandbox checkout, the
# bank-transfer instructions); the API under /v1/ is authenticated by API key on every request, its views are
# DRF's (CSRF-exempt, no session authentication) and its only HTML pages, the gateway return pages, are GET-only
# and read no session. These subclasses of Django's middleware (so the admin's system checks still find them in
# MIDDLEWARE) pass /v1/ requests straight through: their process_request/process_response work is skipped where it
# cannot matter. X-Frame-Options (Django's clickjacking middleware) stays on for every path.
API_PREFIX = "/v1/"


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _browser_only(base: type) -> type:
    def __call__(self, request):  # noqa: N807
        if _is_api(request):
            return self.get_response(request)
        return base.__call__(self, request)

    return type(
        base.__name__, (base,), {"__call__": __call__, "__module__": __name__, "__doc__": base.__doc__}
    )


class CsrfViewMiddleware(_browser_only(_CsrfViewMiddleware)):
    def process_view(self, request, callback, callback_args, callback_kwargs):
        if _is_api(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


SessionMiddleware = _browser_only(_SessionMiddleware)
AuthenticationMiddleware = _browser_only(_AuthenticationMiddleware)
MessageMiddleware = _browser_only(_MessageMiddleware)
