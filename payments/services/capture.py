"""Capturing and voiding an authorized payment (SPEC §13, docs/adr/0047-authorize-and-capture.md), and settling
an authorization with the gateway (reconciliation: a capture whose answer never came, a hold past its deadline,
the hold of a voided invoice).

Two phases, the gateway never called inside a transaction:
1. under the payment's row lock: it must be `authorized` (else 409 `payment_not_capturable` /
   `payment_not_voidable`), its hold not past `capture_before`, the amount within `amount_capturable` (422
   `capture_exceeds_authorized`), and no capture or void under way (`hold_operation`, else 409
   `capture_in_progress`). The operation is marked on the payment (`hold_operation` + `hold_operation_at`) and
   committed: a second capture (or a void) waits for that lock, sees the mark and is refused without calling the
   gateway, so two concurrent captures never both reach the gateway, and never apply twice.
2. no transaction: `Gateway.capture` / `Gateway.void_authorization` (idempotent at the gateway: the payment id).
3. the call is recorded (GatewayCall `capture` / `void_authorization`) and the answer applied through
   `payment_apply_gateway_status`, the webhook path, under the payment's lock: SUCCEEDED with the captured
   amount -> `succeeded` (ledger: the whole hold released, then the payment movement), the invoice gets the
   captured amount (a partial capture pays part of it); CANCELED -> `canceled`. The status change clears the mark.

A permanent gateway refusal clears the mark (the payment stays authorized) and answers 502. A timeout (or any
answer we cannot read) leaves the mark: the capture may have happened. The API answers 504 and the reconciliation
job asks `get_status` once the mark is older than HOLD_OPERATION_STALE_AFTER: a SUCCEEDED answer is applied as
the capture, a still-AUTHORIZED one clears the mark (capture again). A capture retried after that time takes the
mark over (the gateway's idempotency makes a capture that did happen answer SUCCEEDED again).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from gateways import base as gw
from gateways.registry import gateway_for_account
from merchants.models import Merchant
from payments.models import GatewayCallOperation, HoldOperation, Payment, PaymentStatus, ReviewStatus
from payments.services._support import gateway_call
from payments.services.application import ApplyOutcome, GatewayStatusUpdate, payment_apply_gateway_status
from payments.services.gateway_refunds import SUCCESS_FAMILY
from paytrust import money
from paytrust.errors import Conflict, GatewayError, GatewayTimeout, NotFound, Unprocessable

logger = logging.getLogger("paytrust.payments")

# A capture/void mark older than this belongs to a call that has long ended (gateway timeout: 10 s by default).
HOLD_OPERATION_STALE_AFTER = timedelta(minutes=2)

_OPERATIONS = {
    HoldOperation.CAPTURE: GatewayCallOperation.CAPTURE,
    HoldOperation.VOID: GatewayCallOperation.VOID_AUTHORIZATION,
}


def payment_capture(
    *, merchant: Merchant, mode: str, payment_id: str, amount: object = None, now: datetime | None = None
) -> Payment:
    """Capture `amount` (a decimal string in major units; default all that is capturable) of the caller's
    authorized payment. Returns the payment, `succeeded` with `amount_received` = the captured amount."""
    now = now or timezone.now()
    payment, amount_minor = _begin(
        merchant=merchant,
        mode=mode,
        payment_id=payment_id,
        operation=HoldOperation.CAPTURE,
        amount=amount,
        now=now,
    )
    request = gw.CaptureRequest(
        payment_id=payment.id,
        gateway_reference=payment.gateway_reference,
        amount_minor=amount_minor,
        currency=payment.currency,
    )
    adapter = gateway_for_account(payment.gateway_account)
    result = _call_and_apply(payment, HoldOperation.CAPTURE, request, lambda: adapter.capture(request))
    payment = result.payment
    if payment.status not in SUCCESS_FAMILY:
        raise Conflict(
            f"The gateway did not capture payment {payment.id}; it is {payment.status}.",
            code="payment_not_capturable",
        )
    return payment


def payment_void(*, merchant: Merchant, mode: str, payment_id: str, now: datetime | None = None) -> Payment:
    """Release the hold of the caller's authorized payment at the gateway. Returns the payment, `canceled`."""
    now = now or timezone.now()
    payment, _ = _begin(
        merchant=merchant,
        mode=mode,
        payment_id=payment_id,
        operation=HoldOperation.VOID,
        amount=None,
        now=now,
    )
    adapter = gateway_for_account(payment.gateway_account)
    request = {"payment_id": payment.id, "gateway_reference": payment.gateway_reference}
    result = _call_and_apply(
        payment,
        HoldOperation.VOID,
        request,
        lambda: adapter.void_authorization(
            payment_id=payment.id, gateway_reference=payment.gateway_reference
        ),
    )
    if result.payment.status != PaymentStatus.CANCELED:
        raise Conflict(
            f"The gateway did not void payment {payment.id}; it is {result.payment.status}.",
            code="payment_not_voidable",
        )
    return result.payment


def _begin(
    *, merchant: Merchant, mode: str, payment_id: str, operation: str, amount: object, now: datetime
) -> tuple[Payment, int]:
    """Phase 1: check and mark the operation under the payment's lock, commit. (payment, amount to capture)."""
    verb, code = ("captured", "payment_not_capturable")
    if operation == HoldOperation.VOID:
        verb, code = ("voided", "payment_not_voidable")
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("gateway_account")
            .filter(merchant=merchant, mode=mode, pk=payment_id)
            .first()
        )
        if payment is None:
            raise NotFound(f"No such payment: {payment_id!r}.", param="id")
        if payment.status != PaymentStatus.AUTHORIZED:
            raise Conflict(
                f"Payment {payment.id} is {payment.status}; only an authorized payment can be {verb}.",
                code=code,
            )
        if operation == HoldOperation.CAPTURE:
            _check_review(payment)
        if payment.capture_before is not None and payment.capture_before <= now:
            raise Conflict(
                f"The authorization of payment {payment.id} lapsed at {payment.capture_before.isoformat()}; it is "
                "being released.",
                code=code,
            )
        if payment.hold_operation and payment.hold_operation_at > now - HOLD_OPERATION_STALE_AFTER:
            raise Conflict(
                f"A {payment.hold_operation} of payment {payment.id} is in progress. Retry shortly.",
                code="capture_in_progress",
            )
        amount_minor = payment.amount_capturable_minor
        if amount is not None:
            amount_minor = money.to_minor(amount, payment.currency, param="amount", allow_zero=False)
            if amount_minor > payment.amount_capturable_minor:
                capturable = money.format_amount(payment.amount_capturable_minor, payment.currency)
                raise Unprocessable(
                    f"The capture exceeds what the authorization holds ({capturable} {payment.currency}).",
                    code="capture_exceeds_authorized",
                    param="amount",
                )
        payment.hold_operation = operation
        payment.hold_operation_at = now
        payment.save(update_fields=["hold_operation", "hold_operation_at", "updated_at"])
    return payment, amount_minor


def _check_review(payment: Payment) -> None:
    """A payment the risk check flagged is held until finance reviews it (docs/adr/0053): no capture before an
    approval (the admin's approve captures it), none after a rejection (the admin's reject voids it)."""
    if payment.review_status == ReviewStatus.PENDING:
        raise Conflict(
            f"Payment {payment.id} was flagged by the risk check and is under review; it is captured when the "
            "review approves it.",
            code="payment_under_review",
        )
    if payment.review_status == ReviewStatus.REJECTED:
        raise Conflict(
            f"Payment {payment.id} was rejected by the risk review; it cannot be captured.",
            code="payment_review_rejected",
        )


def _call_and_apply(payment: Payment, operation: str, request, fn) -> ApplyOutcome:
    """Phases 2 and 3: call the gateway (no transaction), record the call, apply its answer."""
    result, error = gateway_call(payment, _OPERATIONS[operation], fn, request=request)
    if error is not None:
        if gw.outcome_unknown(error):
            raise GatewayTimeout(
                f"{error.message} Whether the gateway performed the {operation} of payment {payment.id} is unknown; "
                "it stays authorized and PayTrust will ask the gateway (GET /v1/payments/{id}).",
                code=error.code,
                status_code=504,
            )
        _clear_mark(payment.id, operation)
        raise GatewayError(error.message, code=error.code, status_code=502, retryable=error.retryable)
    outcome = _apply(payment, result, source=operation)
    if outcome.payment.status == PaymentStatus.AUTHORIZED:
        _clear_mark(payment.id, operation)  # the gateway still holds it: nothing happened
    return outcome


def _apply(payment: Payment, result: gw.PaymentStatusResult, *, source: str, status: str | None = None):
    update = GatewayStatusUpdate(
        status=status or result.status,
        amount_minor=result.amount_minor,
        currency=result.currency or payment.currency,
        occurred_at=result.paid_at,
        gateway_reference=result.gateway_reference,
        capture_before=result.capture_before,
        failure_code="authorization_expired" if status == gw.GatewayOutcome.EXPIRED else "",
        failure_message="The authorization was not captured in time; its hold was released."
        if status == gw.GatewayOutcome.EXPIRED
        else "",
        refund=result.refund,
    )
    return payment_apply_gateway_status(
        payment_id=payment.id, gateway_account_id=payment.gateway_account_id, update=update, source=source
    )


def _clear_mark(payment_id: str, operation: str) -> None:
    with transaction.atomic():
        Payment.objects.select_for_update(of=("self",)).filter(
            pk=payment_id, status=PaymentStatus.AUTHORIZED, hold_operation=operation
        ).update(hold_operation=HoldOperation.NONE, hold_operation_at=None, updated_at=timezone.now())


# ---- settling with the gateway (reconciliation) ----------------------------------------------------------------


def authorization_settle(
    *, payment: Payment, result: gw.PaymentStatusResult | None, error: GatewayError | None, now: datetime
) -> ApplyOutcome | None:
    """Reconciliation of an `authorized` payment, given the gateway's `get_status` answer (or error). Never inside a
    transaction.

    - the gateway says something else (SUCCEEDED: captured, by us after a timeout or in its dashboard; CANCELED;
      EXPIRED): applied as is;
    - still AUTHORIZED and the hold must end (past `capture_before`, or its invoice was voided: a `void` mark):
      voided at the gateway; its CANCELED answer makes the payment `canceled` after a void, `expired` after a
      lapse (ledger: the hold released either way);
    - still AUTHORIZED otherwise (a capture whose answer never came, and did not happen): the mark is cleared.
    """
    if error is not None:
        logger.warning(
            "reconciliation: gateway could not answer about an authorization",
            extra={"payment": payment.id, "code": error.code},
        )
        return None
    if result.status != gw.GatewayOutcome.AUTHORIZED:
        return _apply(payment, result, source="reconciliation")
    voiding = payment.hold_operation == HoldOperation.VOID
    lapsed = payment.capture_before is not None and payment.capture_before <= now
    if not (voiding or lapsed):
        if payment.hold_operation:
            _clear_mark(payment.id, payment.hold_operation)
        return None
    adapter = gateway_for_account(payment.gateway_account)
    answer, failure = gateway_call(
        payment,
        GatewayCallOperation.VOID_AUTHORIZATION,
        lambda: adapter.void_authorization(
            payment_id=payment.id, gateway_reference=payment.gateway_reference
        ),
        request={"payment_id": payment.id, "gateway_reference": payment.gateway_reference},
    )
    if failure is not None:
        logger.warning(
            "releasing an authorization failed", extra={"payment": payment.id, "code": failure.code}
        )
        return None
    status = None
    if answer.status in (gw.GatewayOutcome.CANCELED, gw.GatewayOutcome.EXPIRED) and not voiding:
        status = gw.GatewayOutcome.EXPIRED  # not captured in time
    return _apply(payment, answer, source="reconciliation", status=status)
