"""Request context: X-Request-Id, body size limit, one structured access-log line per request."""

import logging
import re
import time
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from paytrust.errors import error_response
from paytrust.logs import merchant_var, request_id_var

access_log = logging.getLogger("paytrust.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")


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
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        try:
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                response = error_response(RequestDataTooBig())
            else:
                response = self.get_response(request)
            response["X-Request-Id"] = request_id
            duration_ms = (time.perf_counter() - started) * 1000
            match = getattr(request, "resolver_match", None)
            route = match.route if match else None
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(duration_ms, 2),
                    "merchant_id": merchant_var.get(),
                },
            )
            _observe(request.method, route, response.status_code, duration_ms)
            return response
        finally:
            request_id_var.reset(rid_token)
            merchant_var.reset(mer_token)


def _observe(method, route, status, duration_ms) -> None:
    """Hook for request metrics (paytrust.metrics, when present)."""
    try:
        from paytrust import metrics
    except ImportError:
        return
    metrics.observe_request(
        method=method, route=route or "unmatched", status=status, seconds=duration_ms / 1000
    )
