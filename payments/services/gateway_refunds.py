"""Refunds and chargebacks a gateway reports on a payment (issue 11; SPEC §13 until the refunds API exists).

`payment_apply_gateway_status` (application.py) calls `refund_record` under the payment's row lock when a gateway
reports REFUNDED / PARTIALLY_REFUNDED. What the gateway says is a `gateways.base.RefundReport`:

- cumulative (`total_minor`, Midtrans `refund_amount`; a REFUNDED status without a report means "all of it"): the
  total is the truth. The increment from the payment's recorded `amount_refunded_minor` is recorded as one Refund
  row; a replay, a duplicate or an older report (increment <= 0) changes nothing.
- one refund (`reference` + `amount_minor`, Xendit refund callbacks): recorded once per gateway refund id (unique
  per payment in the database); the same refund again changes nothing.
- `chargeback`: the Refund row is flagged (a chargeback is a refund with a dispute flag); money-wise it is a refund.

The payment's `amount_refunded_minor` never exceeds what it received (422 `refund_exceeds_received`, nothing
written; also a database constraint). The payment ends `refunded` when all it received is refunded, else
`partially_refunded`, whatever the gateway's word (Xendit does not say which). Each Refund row records the outbound
event `refund.succeeded` (the refund object with the payment embedded) in the same transaction. The invoice is not
touched: the money stays applied to it; the refunds work (SPEC §13) decides what a refund does to an invoice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from gateways.base import GatewayOutcome, RefundReport
from payments.models import Payment, PaymentStatus, Refund
from payments.selectors import refund_representation
from payments.services import bookkeeping
from payments.services._support import set_status
from payments.states import can_transition
from paytrust.errors import Conflict, Unprocessable, ValidationError
from webhooks.outbound import services as webhook_services

logger = logging.getLogger("paytrust.payments")

REFUND_OUTCOMES = frozenset({GatewayOutcome.REFUNDED, GatewayOutcome.PARTIALLY_REFUNDED})
SUCCESS_FAMILY = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def describes_collection(report: RefundReport | None) -> bool:
    """True when the report comes with the payment's whole state (cumulative: its status answer's amount is what
    was collected and its paid time when): a payment not yet succeeded here may be applied as succeeded first.
    A single-refund report (Xendit) says nothing about the collection."""
    return report is None or report.total_minor is not None


def refund_record(
    payment: Payment,
    *,
    status: str,
    report: RefundReport | None,
    currency: str,
    occurred_at: datetime | None,
    now: datetime,
) -> tuple[bool, str]:
    """Record what the gateway reports on the payment (locked by the caller, in its transaction): (changed, note).

    Raises, writing nothing: 422 `currency_mismatch`; 409 `refund_before_success` when the payment has not
    succeeded here (a refund callback ahead of the payment's own: the inbound pipeline retries it later);
    400 `refund_amount_missing` for a partial refund without an amount; 422 `refund_exceeds_received`."""
    if currency != payment.currency:
        raise Unprocessable(
            f"The gateway reports a refund in {currency} for payment {payment.id} in {payment.currency}.",
            code="currency_mismatch",
            param="currency",
        )
    if payment.status not in SUCCESS_FAMILY:
        raise Conflict(
            f"The gateway reports a refund of payment {payment.id}, which has not succeeded here yet.",
            code="refund_before_success",
        )
    increment = _increment(payment, status=status, report=report)
    if isinstance(increment, str):
        return False, increment
    if payment.amount_refunded_minor + increment > payment.amount_received_minor:
        raise Unprocessable(
            f"The gateway reports refunds of {payment.amount_refunded_minor + increment} on payment {payment.id}, "
            f"which received {payment.amount_received_minor}.",
            code="refund_exceeds_received",
            param="refund_amount",
        )
    single = report is not None and bool(report.reference)
    refund = Refund.objects.create(
        payment=payment,
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        currency=payment.currency,
        amount_minor=increment,
        chargeback=report is not None and report.chargeback,
        gateway_refund_reference=report.reference if single else "",
        # A single refund's report is about that refund (its time); a cumulative one is the payment's state.
        succeeded_at=(occurred_at or now) if single else now,
    )
    _add_to_payment(payment, refund)
    if refund.chargeback:
        bookkeeping.post_chargeback(refund=refund)
    else:  # made at the gateway: requested and paid out at once
        bookkeeping.post_refund_requested(refund=refund)
        bookkeeping.post_refund_succeeded(refund=refund)
    webhook_services.event_record(
        merchant=payment.merchant,
        mode=payment.mode,
        type="refund.succeeded",
        data=refund_representation(refund, payment),
    )
    kind = "chargeback" if refund.chargeback else "refund"
    return True, f"{kind} {increment} recorded ({refund.id}); refunded {payment.amount_refunded_minor}"


def _add_to_payment(payment: Payment, refund: Refund) -> None:
    """Raise the (locked) payment's refunded amount by the refund's; refunded when all it received is refunded."""
    previous = payment.status
    payment.amount_refunded_minor += refund.amount_minor  # the row is locked
    target = (
        PaymentStatus.REFUNDED
        if payment.amount_refunded_minor == payment.amount_received_minor
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    if target != previous and not can_transition(previous, target):  # unreachable: refunds only add up
        raise Conflict(f"A {previous} payment cannot become {target}.", code="payment_transition_invalid")
    set_status(payment, target)
    payment.gateway_status_at = refund.succeeded_at
    fields = ["amount_refunded_minor", "status", "pain002_status", "pain002_reason", "gateway_status_at"]
    payment.save(update_fields=[*fields, "updated_at"])


def _increment(payment: Payment, *, status: str, report: RefundReport | None) -> int | str:
    """The amount to add to the payment's refunds, or why nothing is added (a str note)."""
    if report is not None and report.reference:
        if Refund.objects.filter(payment=payment, gateway_refund_reference=report.reference).exists():
            return f"refund {report.reference} already recorded"
        amount = report.amount_minor
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValidationError(
                f"The gateway reports refund {report.reference} without a positive amount.",
                code="amount_invalid",
                param="refund_amount",
            )
        return amount
    total = report.total_minor if report is not None else None
    if total is None and status == GatewayOutcome.REFUNDED:
        total = payment.amount_received_minor  # "refunded", no amount: all of it
    if total is None:
        raise ValidationError(
            f"The gateway reports a partial refund of payment {payment.id} without the refunded amount.",
            code="refund_amount_missing",
            param="refund_amount",
        )
    if total < payment.amount_refunded_minor:
        logger.warning(
            "gateway reports less refunded than recorded",
            extra={"payment": payment.id, "reported": total, "recorded": payment.amount_refunded_minor},
        )
        return f"gateway reports {total} refunded, {payment.amount_refunded_minor} recorded; ignored"
    if total == payment.amount_refunded_minor:
        return f"already refunded {total}"
    return total - payment.amount_refunded_minor
