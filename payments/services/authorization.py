"""What entering and leaving `authorized` does to a payment, for `application.payment_apply_gateway_status` (the
one path that applies a gateway's word; docs/adr/0047-authorize-and-capture.md). It runs under the payment's row
lock, in the application's transaction.

- entering `authorized` (the gateway holds the money, capture_method "manual"): `amount_capturable` = the amount
  the gateway holds, `capture_before` = the gateway's limit or now + AUTHORIZATION_HOLD_DAYS (never past the
  invoice's lapse time), `authorized_at`;
  ledger `post_authorization` (a memo hold: gateway_authorized / merchant_pending). Event `payment.authorized`.
- leaving it for `succeeded` (a capture: ours, or one made in the gateway's dashboard): ledger `post_capture`
  releases the WHOLE hold (a partial capture releases the rest at once), `captured_at`; then the application
  records the captured amount as `amount_received` and applies it to the invoice like any success (the ledger's
  payment movement follows from that).
- leaving it for `canceled`, `expired` or `failed`: ledger `post_authorization_release`; `canceled_at` for a void.
  An authorization lapsed uncaptured records `payment.expired`.
A capture or void under way (`hold_operation`, payments/services/capture.py) ends with the status change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from payments.models import HoldOperation, Payment, PaymentStatus
from payments.selectors import payment_representation
from payments.services import bookkeeping
from payments.states import AUTHORIZATION_EXPIRED_EVENT
from paytrust.errors import Unprocessable, ValidationError
from webhooks.outbound import services as webhook_services


def hold_fields(payment: Payment, update, *, previous: str, target: str, now: datetime) -> list[str]:
    """Set the hold's fields on the locked payment for a move previous -> target; the fields to save. `update` is
    the application's GatewayStatusUpdate (not imported: application.py imports this module). Raises, writing
    nothing, on an authorization in another currency or without a positive amount."""
    fields: list[str] = []
    if target == PaymentStatus.AUTHORIZED:
        _check_hold(payment, update)
        payment.amount_capturable_minor = update.amount_minor
        payment.authorized_at = update.occurred_at or now
        limit = update.capture_before or now + timedelta(days=settings.AUTHORIZATION_HOLD_DAYS)
        # Never past the invoice's lapse time: like any payment, a hold does not outlive its invoice (money
        # captured later would land on a closed invoice).
        payment.capture_before = min(limit, payment.invoice.lapses_at)
        fields += ["amount_capturable_minor", "authorized_at", "capture_before"]
    if payment.hold_operation == HoldOperation.COMPLETE and target != previous:
        # The completion of an approved payment (payments/services/completion.py) ends with the status change.
        payment.hold_operation = HoldOperation.NONE
        payment.hold_operation_at = None
        fields += ["hold_operation", "hold_operation_at"]
    if previous == PaymentStatus.AUTHORIZED:
        payment.amount_capturable_minor = 0
        payment.hold_operation = HoldOperation.NONE
        payment.hold_operation_at = None
        fields += ["amount_capturable_minor", "hold_operation", "hold_operation_at"]
        if target == PaymentStatus.SUCCEEDED:
            payment.captured_at = update.occurred_at or now
            fields.append("captured_at")
    if target == PaymentStatus.CANCELED:
        payment.canceled_at = update.occurred_at or now
        fields.append("canceled_at")
    return fields


def hold_movements(payment: Payment, *, previous: str, target: str, now: datetime) -> None:
    """After the payment is saved in its new status (before a success's money is applied): the ledger's hold
    movements and the lapse event. Idempotent (the ledger posts each movement once)."""
    if target == PaymentStatus.AUTHORIZED:
        bookkeeping.post_authorization(
            payment=payment,
            amount_minor=payment.amount_capturable_minor,
            occurred_at=payment.authorized_at or now,
        )
        return
    if previous != PaymentStatus.AUTHORIZED:
        return
    if target == PaymentStatus.SUCCEEDED:
        bookkeeping.post_capture(payment=payment, occurred_at=payment.captured_at or now)
        return
    bookkeeping.post_authorization_release(payment=payment, occurred_at=now)
    if target == PaymentStatus.EXPIRED:
        webhook_services.event_record(
            merchant=payment.merchant,
            mode=payment.mode,
            type=AUTHORIZATION_EXPIRED_EVENT,
            data=payment_representation(payment),
        )


def _check_hold(payment: Payment, update) -> None:
    if update.currency != payment.currency:
        raise Unprocessable(
            f"The gateway reports an authorization in {update.currency} for payment {payment.id} in "
            f"{payment.currency}.",
            code="currency_mismatch",
            param="currency",
        )
    amount = update.amount_minor
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(
            f"The gateway reports an authorization without a positive amount for payment {payment.id}.",
            code="amount_invalid",
            param="amount",
        )
