"""Completing a payment the customer approved at the gateway (docs/adr/0051-paypal.md).

Some gateways only take the customer's APPROVAL on their hosted page; the money moves when the merchant makes one
more call (PayPal Orders: capture the approved order, or authorize it for capture_method "manual"). The approval
reaches us as a notification (`WebhookNotification.approved`: PayPal's CHECKOUT.ORDER.APPROVED) or as the
customer's return to PayTrust; both call `payment_complete_approved`, which makes that call EXACTLY ONCE per payment:

1. under the payment's row lock: it must still be `pending` or `unknown` and before its deadline (anything else:
   already completed or closed, or its invoice voided / lapsed; nothing to do), and no completion may be under way (`hold_operation` "complete" younger than
   HOLD_OPERATION_STALE_AFTER, else 409 `payment_completion_in_progress`). The mark is set and committed, so a
   concurrent caller (the other of notification and return, a duplicate notification) is refused without calling
   the gateway.
2. no transaction: `Gateway.complete_approved_payment` through `_support.gateway_call` (recorded as a GatewayCall
   `complete_payment`), idempotent at the gateway (PayPal-Request-Id `<pay_ id>:complete`).
3. the answer is applied through `payment_apply_gateway_status` (SUCCEEDED, AUTHORIZED, FAILED …); the status
   change clears the mark (payments/services/authorization.py). A PENDING answer (not approved yet, or the buyer
   must pick another funding source) clears the mark. A permanent refusal clears it and raises 502; an unknown
   outcome (timeout, 5xx) leaves it and raises 504: the caller (the inbound notification's retry, 1 then 5
   minutes later) tries again once the mark is stale, and the gateway's idempotency returns the first call's
   result instead of collecting twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from gateways import base as gw
from gateways.registry import gateway_for_account
from payments.models import GatewayCallOperation, HoldOperation, Payment, PaymentStatus
from payments.services._support import gateway_call
from payments.services.application import (
    ApplyOutcome,
    GatewayStatusUpdate,
    PaymentNotFoundForGateway,
    payment_apply_gateway_status,
)
from payments.services.capture import HOLD_OPERATION_STALE_AFTER
from paytrust.errors import Conflict, GatewayError, GatewayTimeout

logger = logging.getLogger("paytrust.payments")

_COMPLETABLE = (PaymentStatus.PENDING, PaymentStatus.UNKNOWN)


def _begin(
    *, payment_id: str, gateway_account_id: str, gateway_reference: str, now: datetime
) -> Payment | None:
    """Phase 1: the payment to complete, marked and committed; None when there is nothing to complete."""
    with transaction.atomic():
        qs = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("gateway_account")
            .filter(gateway_account_id=gateway_account_id)
        )
        payment = (
            qs.filter(pk=payment_id).first()
            if payment_id
            else qs.filter(gateway_reference=gateway_reference).first()
            if gateway_reference
            else None
        )
        if payment is None:
            named = payment_id or f"with gateway reference {gateway_reference!r}"
            raise PaymentNotFoundForGateway(
                f"No payment {named!r} was initiated through gateway account {gateway_account_id}."
            )
        if payment.status not in _COMPLETABLE:
            return None
        if payment.expires_at is not None and payment.expires_at <= now:
            # Past its deadline (or its invoice was voided, which brings the deadline to now): no money is collected
            # any more; reconciliation expires it (PayPal: an approved, uncaptured order moves no money).
            return None
        if gateway_reference and payment.gateway_reference not in ("", gateway_reference):
            raise Conflict(
                f"Payment {payment.id} is {payment.gateway_reference} at the gateway, not {gateway_reference}.",
                code="payment_application_mismatch",
            )
        if payment.hold_operation and payment.hold_operation_at > now - HOLD_OPERATION_STALE_AFTER:
            raise Conflict(
                f"The completion of payment {payment.id} is in progress. Retry shortly.",
                code="payment_completion_in_progress",
            )
        payment.hold_operation = HoldOperation.COMPLETE
        payment.hold_operation_at = now
        if gateway_reference and not payment.gateway_reference:
            payment.gateway_reference = gateway_reference
        payment.save(update_fields=["hold_operation", "hold_operation_at", "gateway_reference", "updated_at"])
    return payment


def _clear_mark(payment_id: str) -> None:
    with transaction.atomic():
        Payment.objects.select_for_update(of=("self",)).filter(
            pk=payment_id, hold_operation=HoldOperation.COMPLETE
        ).update(hold_operation=HoldOperation.NONE, hold_operation_at=None, updated_at=timezone.now())


def payment_complete_approved(
    *,
    payment_id: str = "",
    gateway_account_id: str,
    gateway_reference: str = "",
    source: str,
    now: datetime | None = None,
) -> ApplyOutcome | None:
    """Make the call that collects an approved payment (at most one at a time, see the module docstring). Never
    inside a transaction. Returns the application's outcome, or None when there was nothing to do (already
    completed or closed, or the gateway needs no completion). Raises PaymentNotFoundForGateway (404), Conflict 409
    `payment_completion_in_progress`, GatewayError 502 / GatewayTimeout 504."""
    now = now or timezone.now()
    payment = _begin(
        payment_id=payment_id,
        gateway_account_id=gateway_account_id,
        gateway_reference=gateway_reference,
        now=now,
    )
    if payment is None:
        return None
    adapter = gateway_for_account(payment.gateway_account)
    request = {
        "payment_id": payment.id,
        "gateway_reference": payment.gateway_reference,
        "capture_method": payment.capture_method,
    }
    result, error = gateway_call(
        payment,
        GatewayCallOperation.COMPLETE_PAYMENT,
        lambda: adapter.complete_approved_payment(
            payment_id=payment.id,
            gateway_reference=payment.gateway_reference,
            capture_method=payment.capture_method,
        ),
        request=request,
    )
    if error is not None:
        if gw.outcome_unknown(error):
            raise GatewayTimeout(
                f"{error.message} Whether the gateway completed payment {payment.id} is unknown; it is asked again.",
                code=error.code,
                status_code=504,
            )
        _clear_mark(payment.id)
        raise GatewayError(error.message, code=error.code, status_code=502, retryable=error.retryable)
    if result is None:
        _clear_mark(payment.id)
        return None
    update = GatewayStatusUpdate(
        status=result.status,
        amount_minor=result.amount_minor,
        currency=result.currency or payment.currency,
        occurred_at=result.paid_at,
        gateway_reference=result.gateway_reference,
        capture_before=result.capture_before,
        failure_code="declined" if result.status == gw.GatewayOutcome.FAILED else "",
        failure_message="The gateway declined the payment."
        if result.status == gw.GatewayOutcome.FAILED
        else "",
        refund=result.refund,
    )
    outcome = payment_apply_gateway_status(
        payment_id=payment.id, gateway_account_id=payment.gateway_account_id, update=update, source=source
    )
    if outcome.payment.status in _COMPLETABLE:
        _clear_mark(payment.id)  # the gateway still waits for the customer: nothing happened
    logger.info(
        "approved payment completed",
        extra={"payment": payment.id, "status": outcome.payment.status, "source": source},
    )
    return outcome
