"""The ONE code path that applies a gateway's word about a payment (inbound webhooks and reconciliation both use
it), and hands money received to the invoice.

Lock order: the payment row, then the invoice row (inside `invoice_apply_payment`). Voiding takes them in the same
order (payments.services.invoice_void); initiation takes the invoice first but never waits for a payment lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from gateways import base as gw
from invoices.services import invoice_apply_payment
from payments.models import Payment, PaymentStatus
from payments.selectors import invoice_payments
from payments.services._support import emit, set_status
from payments.states import can_transition
from paytrust.errors import NotFound, Unprocessable, ValidationError

logger = logging.getLogger("paytrust.payments")

# Gateway outcome (contract vocabulary) -> our payment status. Refund statuses are the refunds work's (SPEC §13);
# UNKNOWN never moves a payment.
_TARGETS: dict[str, str] = {
    gw.GatewayOutcome.PENDING: PaymentStatus.PENDING,
    gw.GatewayOutcome.SUCCEEDED: PaymentStatus.SUCCEEDED,
    gw.GatewayOutcome.FAILED: PaymentStatus.FAILED,
    gw.GatewayOutcome.EXPIRED: PaymentStatus.EXPIRED,
}
_SUCCESS_FAMILY = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


class PaymentNotFoundForGateway(NotFound):
    code = "payment_unknown_to_paytrust"


@dataclass(frozen=True)
class GatewayStatusUpdate:
    """What a gateway says about one of our payments (from a webhook or a status query)."""

    status: str  # gateways.base.GatewayOutcome value
    amount_minor: int
    currency: str
    occurred_at: datetime | None
    gateway_reference: str = ""
    payment_url: str = ""
    failure_code: str = ""
    failure_message: str = ""


@dataclass(frozen=True)
class ApplyOutcome:
    payment: Payment
    previous_status: str
    changed: bool
    note: str  # what happened, for the webhook event's `outcome` and the logs


def _failure_details(update: GatewayStatusUpdate, target: str) -> tuple[str, str]:
    code = update.failure_code or ("expired" if target == PaymentStatus.EXPIRED else "failed")
    message = update.failure_message or (
        "The payment expired before it was completed."
        if target == PaymentStatus.EXPIRED
        else "The gateway reported the payment as failed."
    )
    return code[:64], message[:500]


def payment_apply_gateway_status(
    *, payment_id: str, gateway_account_id: str, update: GatewayStatusUpdate, source: str
) -> ApplyOutcome:
    """Apply the gateway's status for a payment under its row lock. Idempotent; tolerates out-of-order delivery.

    - succeeded (from initiating/pending/unknown, and also from failed/expired: money is never refused): records
      the amount actually paid and applies it to the invoice with `invoice_apply_payment` (an underpayment leaves
      the installment partly paid, an overpayment pays the next installments / is recorded as overpayment);
      records `payment.succeeded`. Currency must be the payment's (else 422 currency_mismatch, nothing written).
    - failed / expired (from an open status only; records `payment.failed` for failed). A late EXPIRED or FAILED
      after a success changes nothing. pending (from initiating/unknown) fills in the gateway reference.
    - anything already in that state, or not allowed by `payments.states`, changes nothing (`changed=False`).
    Raises PaymentNotFoundForGateway (404) when the payment is not one of this gateway account's.
    """
    target = _TARGETS.get(update.status)
    with transaction.atomic():
        # Lock order: this payment, then (in invoice_apply_payment) its invoice.
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("merchant")
            .filter(pk=payment_id, gateway_account_id=gateway_account_id)
            .first()
        )
        if payment is None:
            raise PaymentNotFoundForGateway(
                f"No payment {payment_id!r} was initiated through gateway account {gateway_account_id}."
            )
        previous = payment.status
        ignored = _ignored_because(previous, target, update)
        if ignored is not None:
            return ApplyOutcome(payment=payment, previous_status=previous, changed=False, note=ignored)
        fields = _take_update(payment, update, target, now=timezone.now())
        set_status(payment, target)
        payment.save(update_fields=fields)
        emit(payment, target)
        note = f"{previous} -> {target}"
        if target == PaymentStatus.SUCCEEDED:
            applied = invoice_apply_payment(
                invoice_id=payment.invoice_id,
                payment_id=payment.id,
                amount_minor=payment.amount_received_minor,
                currency=payment.currency,
                installment_number=payment.installment_number,
                paid_at=payment.succeeded_at,
                # The invoice events' payments list, read after this payment's change (same transaction).
                payments=invoice_payments(invoice_id=payment.invoice_id),
            )
            application = applied.application
            note += f"; applied {application.applied_minor}, overpaid {application.overpaid_minor}"
    logger.info(
        "payment status applied",
        extra={"payment": payment.id, "from": previous, "to": target, "source": source},
    )
    return ApplyOutcome(payment=payment, previous_status=previous, changed=True, note=note)


def _ignored_because(previous: str, target: str | None, update: GatewayStatusUpdate) -> str | None:
    """Why the update changes nothing (for the outcome's note), or None when it applies."""
    if target is None:
        return f"gateway status {update.status} is not applied to payments"
    if previous == target or (target == PaymentStatus.SUCCEEDED and previous in _SUCCESS_FAMILY):
        return f"already {previous}"
    if not can_transition(previous, target):
        return f"{previous} -> {target} not allowed; ignored"
    return None


def _take_update(payment: Payment, update: GatewayStatusUpdate, target: str, *, now: datetime) -> list[str]:
    """Copy what the gateway says onto the (locked) payment for a move to `target`; the fields to save. Raises
    (nothing written) on a success in another currency or without a positive amount."""
    fields = ["status", "pain002_status", "pain002_reason", "gateway_status_at", "updated_at"]
    if update.gateway_reference and not payment.gateway_reference:
        payment.gateway_reference = update.gateway_reference
        fields.append("gateway_reference")
    if update.payment_url and not payment.payment_url:
        payment.payment_url = update.payment_url
        fields.append("payment_url")
    payment.gateway_status_at = update.occurred_at or now
    if target in (PaymentStatus.SUCCEEDED, PaymentStatus.PENDING):
        payment.failure_code = ""
        payment.failure_message = ""
        fields += ["failure_code", "failure_message"]
    if target == PaymentStatus.SUCCEEDED:
        _check_success(payment, update)
        payment.amount_received_minor = update.amount_minor
        payment.succeeded_at = update.occurred_at or now
        fields += ["amount_received_minor", "succeeded_at"]
    elif target in (PaymentStatus.FAILED, PaymentStatus.EXPIRED):
        payment.failure_code, payment.failure_message = _failure_details(update, target)
        stamp_field = "failed_at" if target == PaymentStatus.FAILED else "expired_at"
        setattr(payment, stamp_field, update.occurred_at or now)
        fields += ["failure_code", "failure_message", stamp_field]
    return fields


def _check_success(payment: Payment, update: GatewayStatusUpdate) -> None:
    if update.currency != payment.currency:
        raise Unprocessable(
            f"The gateway reports {update.currency} for payment {payment.id} in {payment.currency}.",
            code="currency_mismatch",
            param="currency",
        )
    if (
        isinstance(update.amount_minor, bool)
        or not isinstance(update.amount_minor, int)
        or update.amount_minor <= 0
    ):
        raise ValidationError(
            f"The gateway reports a success without a positive amount for payment {payment.id}.",
            code="amount_invalid",
            param="amount",
        )
