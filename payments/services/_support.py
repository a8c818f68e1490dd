"""What the payment use cases share: the status change (with its pain.002 code), the outbound event, the record
of a gateway call."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments.models import GatewayCall, Payment
from payments.pain002 import payment_status_to_pain002
from payments.selectors import payment_representation
from payments.states import STATUS_EVENTS
from paytrust.errors import GatewayError
from paytrust.redaction import redact
from webhooks.outbound import services as webhook_services


def jsonable(value: Any) -> Any:
    """Gateway payloads -> JSON-storable values (Decimal amounts as exact strings, datetimes as ISO 8601)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def set_status(payment: Payment, status: str) -> None:
    """Set the status and the pain.002 code that goes with it (stored, shown as iso20022_status/_reason)."""
    payment.status = status
    code, reason = payment_status_to_pain002(status, payment.failure_code or None)
    payment.pain002_status = code
    payment.pain002_reason = reason or ""


def emit(payment: Payment, status: str) -> None:
    """Record the outbound event of entering `status`, if it has one, in the caller's transaction."""
    event = STATUS_EVENTS.get(status)
    if event:
        webhook_services.event_record(
            merchant=payment.merchant, mode=payment.mode, type=event, data=payment_representation(payment)
        )


def record_call(
    *,
    payment_id: str,
    operation: str,
    started_at: datetime,
    seconds: float,
    request: Any,
    response: Any = None,
    error: GatewayError | None = None,
) -> GatewayCall:
    return GatewayCall.objects.create(
        payment_id=payment_id,
        operation=operation,
        started_at=started_at,
        duration_ms=max(0, int(seconds * 1000)),
        outcome="ok" if error is None else error.code,
        request=redact(jsonable(request or {})),
        response=redact(jsonable(response or {})),
        error_message="" if error is None else error.message[:500],
    )


logger = logging.getLogger("paytrust.payments")


def gateway_call(
    payment: Payment, operation: str, fn: Callable[[], Any], *, request: Any
) -> tuple[Any, GatewayError | None]:
    """Call the gateway (`fn`, with NO transaction open) and record the call as a GatewayCall: (result, error).

    Every gateway call of the payments layer goes through here. A GatewayError is returned, not raised; an adapter
    that crashes (a bug) is an unknown outcome - the gateway may or may not have acted - so it becomes a retryable
    `gateway_bad_response` (logged with its traceback) and the caller's "outcome unknown" path handles it."""
    started_at, t0 = timezone.now(), time.perf_counter()
    result, error = None, None
    try:
        result = fn()
    except GatewayError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - an adapter bug: the gateway may or may not have acted
        logger.exception("gateway call crashed", extra={"payment": payment.id, "operation": operation})
        error = GatewayError(
            f"The {payment.gateway} adapter failed unexpectedly ({type(exc).__name__}).",
            code="gateway_bad_response",
            retryable=True,
        )
    with transaction.atomic():
        record_call(
            payment_id=payment.id,
            operation=operation,
            started_at=started_at,
            seconds=time.perf_counter() - t0,
            request=request,
            response=getattr(result, "raw", None),
            error=error,
        )
    return result, error
