"""Settling a refund, shared by our refunds (refunds.py: the gateway's answer, reconciliation) and the refunds a
gateway reports (gateway_refunds.py): what "succeeded" and "failed" write, under the caller's payment row lock and
in its transaction (docs/adr/0046-refunds.md).

- succeeded: the refund `succeeded` with `succeeded_at`; the payment's `amount_refunded_minor` raised by its
  amount, the payment `partially_refunded` / `refunded` (all it received refunded); ledger
  `post_refund_succeeded`; outbound event `refund.succeeded`.
- failed: the refund `failed` with the gateway's message; ledger `post_refund_failed` (the requested movement
  reversed: the money is the merchant's again); event `refund.failed`. The payment is untouched (a pending
  refund never counted in `amount_refunded_minor`).

Both change only a `pending` refund: applying the same outcome twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from datetime import datetime

from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.selectors import refund_representation
from payments.services import bookkeeping
from payments.services._support import set_status
from payments.services.report_rollup import rollup_add_refund
from payments.states import can_transition
from paytrust.errors import Conflict, Unprocessable
from webhooks.outbound import services as webhook_services

logger = logging.getLogger("paytrust.payments")

# A payment that collected money. A `refunded` one is among them: asking for more is 422
# `refund_exceeds_available` (SPEC §13: "more gives 422"), not 409.
REFUNDABLE_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def add_to_payment(payment: Payment, *, amount_minor: int, at: datetime) -> None:
    """Raise the (locked) payment's refunded amount; `refunded` when all it received is refunded."""
    previous = payment.status
    payment.amount_refunded_minor += amount_minor  # the row is locked
    target = (
        PaymentStatus.REFUNDED
        if payment.amount_refunded_minor == payment.amount_received_minor
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    if target != previous and not can_transition(previous, target):  # unreachable: refunds only add up
        raise Conflict(f"A {previous} payment cannot become {target}.", code="payment_transition_invalid")
    set_status(payment, target)
    payment.gateway_status_at = at
    fields = ["amount_refunded_minor", "status", "pain002_status", "pain002_reason", "gateway_status_at"]
    payment.save(update_fields=[*fields, "updated_at"])


def _event(payment: Payment, refund: Refund, type_: str) -> None:
    webhook_services.event_record(
        merchant=payment.merchant,
        mode=payment.mode,
        type=type_,
        data=refund_representation(refund, payment),
    )


def _reference_free(refund: Refund, reference: str) -> bool:
    return (
        bool(reference)
        and not Refund.objects.filter(payment_id=refund.payment_id, gateway_refund_reference=reference)
        .exclude(pk=refund.pk)
        .exists()
    )


def refund_note_reference(refund: Refund, reference: str) -> bool:
    """Keep the gateway's refund id on the refund (the first one it tells us); never one another row holds."""
    if refund.gateway_refund_reference or not _reference_free(refund, reference):
        return False
    refund.gateway_refund_reference = reference[:128]
    return True


def refund_mark_succeeded(
    *, payment: Payment, refund: Refund, succeeded_at: datetime, gateway_refund_reference: str = ""
) -> bool:
    """A pending refund paid out (payment and refund locked by the caller). False: it was not pending.

    Raises 422 `refund_exceeds_received` (nothing written, the refund stays pending) when it would take the
    payment's refunds above what it received: possible only when the gateway took money back on its own meanwhile
    (a chargeback reported while our refund was in flight) and still pays our refund out. Finance staff must look
    at such a payment (the error is logged; reconciliation keeps asking)."""
    if refund.status != RefundStatus.PENDING:
        return False
    if payment.amount_refunded_minor + refund.amount_minor > payment.amount_received_minor:
        logger.error(
            "refund paid out above what the payment received",
            extra={"refund": refund.pk, "payment": payment.pk, "refunded": payment.amount_refunded_minor},
        )
        raise Unprocessable(
            f"The gateway reports refund {refund.pk} of {refund.amount_minor} paid out, but payment {payment.pk} "
            f"has {payment.amount_refunded_minor} of {payment.amount_received_minor} refunded already.",
            code="refund_exceeds_received",
        )
    refund_note_reference(refund, gateway_refund_reference)
    refund.status = RefundStatus.SUCCEEDED
    refund.succeeded_at = succeeded_at
    refund.failure_code = refund.failure_message = ""
    refund.save(
        update_fields=[
            "status",
            "succeeded_at",
            "gateway_refund_reference",
            "failure_code",
            "failure_message",
            "updated_at",
        ]
    )
    add_to_payment(payment, amount_minor=refund.amount_minor, at=succeeded_at)
    rollup_add_refund(payment=payment, refund=refund)  # the report's daily rollup
    bookkeeping.post_refund_succeeded(refund=refund)
    _event(payment, refund, "refund.succeeded")
    return True


def refund_mark_failed(
    *,
    payment: Payment,
    refund: Refund,
    failure_code: str,
    failure_message: str,
    now: datetime,
    gateway_refund_reference: str = "",
) -> bool:
    """A pending refund the gateway refused or gave up (payment and refund locked by the caller)."""
    if refund.status != RefundStatus.PENDING:
        return False
    refund_note_reference(refund, gateway_refund_reference)
    refund.status = RefundStatus.FAILED
    refund.failed_at = now
    refund.failure_code = (failure_code or "refund_failed")[:64]
    refund.failure_message = (failure_message or "The gateway refused the refund.")[:500]
    refund.save(
        update_fields=[
            "status",
            "failed_at",
            "failure_code",
            "failure_message",
            "gateway_refund_reference",
            "updated_at",
        ]
    )
    bookkeeping.post_refund_failed(refund=refund, occurred_at=now)
    _event(payment, refund, "refund.failed")
    logger.info(
        "refund failed", extra={"refund": refund.pk, "payment": payment.pk, "code": refund.failure_code}
    )
    return True
