"""The ONE code path that applies a gateway's word about a payment (inbound webhooks and reconciliation both use
it), and hands money received to the invoice. Refunds and chargebacks the gateway reports are recorded by
`gateway_refunds.refund_record` on the same path.

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
from invoices.models import InvoiceStatus
from invoices.selectors import invoice_closed_for_payment
from invoices.services import invoice_apply_payment
from payments.models import Payment, PaymentStatus
from payments.selectors import invoice_payments, payment_representation
from payments.services import authorization, bookkeeping
from payments.services._support import emit, set_status
from payments.services.gateway_refunds import (
    REFUND_OUTCOMES,
    SUCCESS_FAMILY,
    describes_collection,
    refund_record,
)
from payments.states import can_transition
from paytrust.errors import NotFound, Unprocessable, ValidationError
from webhooks.outbound import services as webhook_services

logger = logging.getLogger("paytrust.payments")

# Gateway outcome (contract vocabulary) -> our payment status. Refund outcomes go to gateway_refunds (the amounts
# decide between refunded and partially_refunded); UNKNOWN never moves a payment.
_TARGETS: dict[str, str] = {
    gw.GatewayOutcome.PENDING: PaymentStatus.PENDING,
    gw.GatewayOutcome.SUCCEEDED: PaymentStatus.SUCCEEDED,
    gw.GatewayOutcome.FAILED: PaymentStatus.FAILED,
    gw.GatewayOutcome.EXPIRED: PaymentStatus.EXPIRED,
    gw.GatewayOutcome.AUTHORIZED: PaymentStatus.AUTHORIZED,
    gw.GatewayOutcome.CANCELED: PaymentStatus.CANCELED,
}


class PaymentNotFoundForGateway(NotFound):
    code = "payment_unknown_to_paytrust"


@dataclass(frozen=True)
class GatewayStatusUpdate:
    """What a gateway says about one of our payments (from a webhook or a status query)."""

    status: str  # gateways.base.GatewayOutcome value
    amount_minor: int  # collected when succeeded (or refunded, with a cumulative refund report)
    currency: str
    # When the gateway says it happened; for a success the gateway's paid time, which decides whether money that
    # arrives after the invoice's lapse time was paid in time (docs/adr/0025-late-reported-payments.md).
    occurred_at: datetime | None
    gateway_reference: str = ""
    payment_url: str = ""
    failure_code: str = ""
    failure_message: str = ""
    # With REFUNDED / PARTIALLY_REFUNDED: the WebhookNotification's / PaymentStatusResult's `refund` as is.
    refund: gw.RefundReport | None = None
    # With AUTHORIZED: until when the gateway lets the hold be captured (None: AUTHORIZATION_HOLD_DAYS from now).
    capture_before: datetime | None = None


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
      the installment partly paid, an overpayment pays the next installments / is recorded as overpayment; money
      paid - by the gateway's paid time - at or before the invoice's lapse time counts as paid in time even when
      it is reported after it, docs/adr/0025); records `payment.succeeded`. Currency must be the payment's (else
      422 currency_mismatch, nothing written).
    - failed / expired (from an open status only; records `payment.failed` for failed). A late EXPIRED or FAILED
      after a success changes nothing. pending (from initiating/unknown) fills in the gateway reference.
    - authorized / canceled, and a success, failure or expiry of an authorized payment (a capture, a void, a
      lapse): the hold's fields, ledger movements and events are `authorization`'s (docs/adr/0047).
    - refunded / partially_refunded: `gateway_refunds.refund_record` (refund rows, `amount_refunded_minor`,
      `refund.succeeded`); a payment not yet succeeded here is applied as succeeded first when the report carries
      the payment's whole state (cumulative: Midtrans), else 409 `refund_before_success` (retried by the caller).
    - anything already in that state, or not allowed by `payments.states`, changes nothing (`changed=False`).
    The payment is `payment_id` of the gateway account, or - when `payment_id` is "" (a Xendit refund callback
    does not echo our id) - the account's payment with `update.gateway_reference`.
    Raises PaymentNotFoundForGateway (404) when the payment is not one of this gateway account's.
    """
    target = _TARGETS.get(update.status)
    with transaction.atomic():
        # Lock order: this payment, then (in invoice_apply_payment) its invoice.
        payment = _locked_payment(payment_id, gateway_account_id, update.gateway_reference)
        previous = payment.status
        now = timezone.now()
        if update.status in REFUND_OUTCOMES:
            changed, note = _apply_refund(payment, update, now=now)
            if not changed:
                return ApplyOutcome(payment=payment, previous_status=previous, changed=False, note=note)
        else:
            ignored = _ignored_because(previous, target, update)
            if ignored is not None:
                return ApplyOutcome(payment=payment, previous_status=previous, changed=False, note=ignored)
            note = _apply_target(payment, update, target, now=now)
    logger.info(
        "payment status applied",
        extra={"payment": payment.id, "from": previous, "to": payment.status, "source": source},
    )
    return ApplyOutcome(payment=payment, previous_status=previous, changed=True, note=note)


def _locked_payment(payment_id: str, gateway_account_id: str, gateway_reference: str) -> Payment:
    qs = (
        Payment.objects.select_for_update(of=("self",))
        .select_related("merchant")
        .filter(gateway_account_id=gateway_account_id)
    )
    payment = None
    if payment_id:
        payment = qs.filter(pk=payment_id).first()
    elif gateway_reference:
        payment = qs.filter(gateway_reference=gateway_reference).first()
    if payment is None:
        named = payment_id or f"with gateway reference {gateway_reference!r}"
        raise PaymentNotFoundForGateway(
            f"No payment {named!r} was initiated through gateway account {gateway_account_id}."
        )
    return payment


def _apply_target(payment: Payment, update: GatewayStatusUpdate, target: str, *, now: datetime) -> str:
    """Move the locked payment to `target` (checked by the caller), record its event and, for a success, apply
    the money to the invoice. Returns the note."""
    previous = payment.status
    fields = _take_update(payment, update, target, now=now)
    fields += authorization.hold_fields(payment, update, previous=previous, target=target, now=now)
    set_status(payment, target)
    if target == PaymentStatus.SUCCEEDED and invoice_closed_for_payment(
        invoice_id=payment.invoice_id, paid_at=payment.succeeded_at
    ):
        # Known before `payment.succeeded` is recorded, so that event says so too.
        payment.received_on_closed_invoice = True
        fields.append("received_on_closed_invoice")
    payment.save(update_fields=fields)
    emit(payment, target)
    authorization.hold_movements(payment, previous=previous, target=target, now=now)
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
        bookkeeping.post_payment_applied(payment=payment, application=application)
        note += f"; applied {application.applied_minor}, overpaid {application.overpaid_minor}"
        if not applied.replayed and applied.invoice.status in CLOSED_INVOICE_STATUSES:
            _flag_received_on_closed_invoice(payment)
            note += f"; received on a {applied.invoice.status} invoice (flagged)"
        elif payment.received_on_closed_invoice and not applied.replayed:
            # The rule above and the application disagree: trust the application (the invoice's word).
            Payment.objects.filter(pk=payment.pk).update(received_on_closed_invoice=False)
            payment.received_on_closed_invoice = False
    return note


def _apply_refund(payment: Payment, update: GatewayStatusUpdate, *, now: datetime) -> tuple[bool, str]:
    """A refund / chargeback report: (changed, note). A payment the gateway reports as collected and then
    refunded, that has not succeeded here (its success notification was missed or is late), succeeds first."""
    note = ""
    if payment.status not in SUCCESS_FAMILY and describes_collection(update.refund):
        note = _apply_target(payment, update, PaymentStatus.SUCCEEDED, now=now) + "; "
    changed, refund_note = refund_record(
        payment,
        status=update.status,
        report=update.refund,
        currency=update.currency,
        occurred_at=update.occurred_at,
        now=now,
    )
    return changed or bool(note), note + refund_note


# An invoice in one of these states takes no more money: what arrives anyway (paid after the lapse time, or after
# a void) is recorded and flagged, never counted as an ordinary overpayment.
CLOSED_INVOICE_STATUSES = (InvoiceStatus.VOID, InvoiceStatus.EXPIRED)


def _flag_received_on_closed_invoice(payment: Payment) -> None:
    """In the application's transaction: flag the payment for finance staff (usually done already, before
    `payment.succeeded`) and tell the merchant."""
    if not payment.received_on_closed_invoice:
        payment.received_on_closed_invoice = True
        payment.save(update_fields=["received_on_closed_invoice", "updated_at"])
    webhook_services.event_record(
        merchant=payment.merchant,
        mode=payment.mode,
        type="payment.received_on_closed_invoice",
        data=payment_representation(payment),
    )
    logger.warning(
        "money received on a closed invoice", extra={"payment": payment.id, "invoice": payment.invoice_id}
    )


def _ignored_because(previous: str, target: str | None, update: GatewayStatusUpdate) -> str | None:
    """Why the update changes nothing (for the outcome's note), or None when it applies."""
    if target is None:
        return f"gateway status {update.status} is not applied to payments"
    if previous == target or (target == PaymentStatus.SUCCEEDED and previous in SUCCESS_FAMILY):
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
    if update.payment_url and not payment.payment_url and target == PaymentStatus.PENDING:
        # Only an open payment's checkout is worth keeping: a closed one's is never handed out.
        payment.payment_url = update.payment_url
        fields.append("payment_url")
    payment.gateway_status_at = update.occurred_at or now
    if target in (PaymentStatus.SUCCEEDED, PaymentStatus.PENDING, PaymentStatus.AUTHORIZED):
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
