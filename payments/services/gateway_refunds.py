"""Refunds and chargebacks a gateway reports on a payment (issue 11; docs/adr/0032, and 0046 for our own).

`payment_apply_gateway_status` (application.py) calls `refund_record` under the payment's row lock when a gateway
reports REFUNDED / PARTIALLY_REFUNDED. What the gateway says is a `gateways.base.RefundReport`:

- cumulative (`total_minor`, Midtrans `refund_amount`, the sandbox; a REFUNDED status without a report means "all
  of it"): the total is the truth. The increment over the payment's recorded `amount_refunded_minor` settles our
  own pending refunds (origin api/admin) only when it is exactly one of them or all of them together; with pending
  refunds of ours and any other increment the report is ambiguous (409, retried later, after reconciliation has
  settled ours by id). Without pending refunds of ours it is recorded as one `gateway` Refund row. A replay, a
  duplicate or an older report (increment <= 0) changes nothing.
- one refund (`reference` + `amount_minor`, Xendit refund callbacks): when the reference names a refund we know
  (its `gateway_refund_reference`, or our ref_ id, or `our_refund_id`: Xendit echoes our id as `reference_id`),
  that refund is settled (a pending one succeeds; a succeeded one
  is left alone); otherwise it is recorded once per gateway refund id (unique per payment in the database).
- `chargeback`: the Refund row is flagged (a chargeback is a refund with a dispute flag); money-wise it is a refund;
  it never settles one of our pending refunds.

The payment's `amount_refunded_minor` never exceeds what it received (422 `refund_exceeds_received`, nothing
written; also a database constraint). The payment ends `refunded` when all it received is refunded, else
`partially_refunded`, whatever the gateway's word (Xendit does not say which). Each Refund row settled or recorded
records the outbound event `refund.succeeded` (the refund object) in the same transaction. The invoice is not
touched: the money stays applied to it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q

from gateways.base import GatewayOutcome, RefundReport
from payments.models import Payment, PaymentStatus, Refund, RefundOrigin, RefundStatus
from payments.selectors import refund_representation
from payments.services import bookkeeping
from payments.services.refund_settlement import add_to_payment, refund_mark_succeeded
from payments.services.report_rollup import rollup_add_refund
from paytrust.errors import Conflict, Unprocessable, ValidationError
from webhooks.outbound import services as webhook_services

logger = logging.getLogger("paytrust.payments")

REFUND_OUTCOMES = frozenset({GatewayOutcome.REFUNDED, GatewayOutcome.PARTIALLY_REFUNDED})
SUCCESS_FAMILY = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
OURS = (RefundOrigin.API, RefundOrigin.ADMIN)


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
    if report is not None and report.reference:
        return _record_single(payment, report=report, at=occurred_at or now, now=now)
    return _record_cumulative(payment, status=status, report=report, now=now)


def _check_not_above_received(payment: Payment, increment: int) -> None:
    if payment.amount_refunded_minor + increment > payment.amount_received_minor:
        raise Unprocessable(
            f"The gateway reports refunds of {payment.amount_refunded_minor + increment} on payment {payment.id}, "
            f"which received {payment.amount_received_minor}.",
            code="refund_exceeds_received",
            param="refund_amount",
        )


def _record_single(
    payment: Payment, *, report: RefundReport, at: datetime, now: datetime
) -> tuple[bool, str]:
    """One refund by the gateway's id: ours when it names one we know (its gateway id or our ref_ id), settled;
    else a new `gateway` refund, once per reference."""
    reference = report.reference
    named = Q(gateway_refund_reference=reference) | Q(pk=reference)
    if report.our_refund_id:
        named |= Q(pk=report.our_refund_id, origin__in=OURS)
    known = Refund.objects.select_for_update().filter(payment=payment).filter(named).first()
    if known is not None:
        if known.status == RefundStatus.PENDING and not report.chargeback:
            refund_mark_succeeded(
                payment=payment, refund=known, succeeded_at=at, gateway_refund_reference=reference
            )
            return (
                True,
                f"refund {known.id} succeeded ({reference}); refunded {payment.amount_refunded_minor}",
            )
        if known.status == RefundStatus.FAILED:
            logger.warning(
                "gateway reports a refund we recorded as failed",
                extra={"payment": payment.id, "refund": known.id, "reference": reference},
            )
            return False, f"refund {reference} is recorded as failed ({known.id}); ignored"
        return False, f"refund {reference} already recorded"
    amount = report.amount_minor
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(
            f"The gateway reports refund {reference} without a positive amount.",
            code="amount_invalid",
            param="refund_amount",
        )
    _check_not_above_received(payment, amount)
    refund = _record_gateway_refund(
        payment, amount_minor=amount, chargeback=report.chargeback, reference=reference, succeeded_at=at
    )
    kind = "chargeback" if refund.chargeback else "refund"
    return True, f"{kind} {amount} recorded ({refund.id}); refunded {payment.amount_refunded_minor}"


def _record_cumulative(
    payment: Payment, *, status: str, report: RefundReport | None, now: datetime
) -> tuple[bool, str]:
    """The gateway's cumulative total. A total names no refund, so the increment over what is recorded is ours
    only when it is exactly one pending refund of ours, or all of them together: those are settled. With pending
    refunds of ours and any other increment, which refunds the gateway paid is unknown: 409
    `refund_report_ambiguous`, nothing written; reconciliation settles ours by their ids (`get_refund`) and the
    report, retried by the inbound pipeline, then records only what is left as a `gateway` refund. Without pending
    refunds of ours (or for a chargeback: never ours) the increment is one `gateway` refund."""
    increment = _increment(payment, status=status, report=report)
    if isinstance(increment, str):
        return False, increment
    _check_not_above_received(payment, increment)
    chargeback = report is not None and report.chargeback
    pending = [] if chargeback else _our_pending(payment)
    if pending:
        settled = _paid_by(pending, increment)
        if settled is None:
            raise Conflict(
                f"The gateway reports {increment} more refunded on payment {payment.id}, which does not match its "
                f"pending refunds ({', '.join(f'{r.id}: {r.amount_minor}' for r in pending)}); they are settled "
                "one by one with the gateway first.",
                code="refund_report_ambiguous",
            )
        for refund in settled:
            refund_mark_succeeded(payment=payment, refund=refund, succeeded_at=now)
        return True, f"settled {', '.join(r.id for r in settled)}; refunded {payment.amount_refunded_minor}"
    refund = _record_gateway_refund(
        payment, amount_minor=increment, chargeback=chargeback, reference="", succeeded_at=now
    )
    kind = "chargeback" if chargeback else "refund"
    return True, f"{kind} {increment} recorded ({refund.id}); refunded {payment.amount_refunded_minor}"


def _our_pending(payment: Payment) -> list[Refund]:
    return list(
        Refund.objects.select_for_update()
        .filter(payment=payment, status=RefundStatus.PENDING, origin__in=OURS)
        .order_by("created_at", "id")
    )


def _paid_by(pending: list[Refund], increment: int) -> list[Refund] | None:
    """The pending refunds an increment is exactly: one of them, or all together; None when it is neither."""
    exact = [refund for refund in pending if refund.amount_minor == increment]
    if len(exact) == 1:
        return exact
    if sum(refund.amount_minor for refund in pending) == increment:
        return pending
    return None


def _record_gateway_refund(
    payment: Payment, *, amount_minor: int, chargeback: bool, reference: str, succeeded_at: datetime
) -> Refund:
    """A refund (or chargeback) made at the gateway, not asked for by us: requested and paid out at once."""
    refund = Refund.objects.create(
        payment=payment,
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        currency=payment.currency,
        amount_minor=amount_minor,
        status=RefundStatus.SUCCEEDED,
        origin=RefundOrigin.GATEWAY,
        chargeback=chargeback,
        gateway_refund_reference=reference,
        succeeded_at=succeeded_at,
    )
    add_to_payment(payment, amount_minor=amount_minor, at=succeeded_at)
    rollup_add_refund(payment=payment, refund=refund)  # the report's daily rollup
    if refund.chargeback:
        bookkeeping.post_chargeback(refund=refund)
    else:
        bookkeeping.post_refund_requested(refund=refund)
        bookkeeping.post_refund_succeeded(refund=refund)
    webhook_services.event_record(
        merchant=payment.merchant,
        mode=payment.mode,
        type="refund.succeeded",
        data=refund_representation(refund, payment),
    )
    return refund


def _increment(payment: Payment, *, status: str, report: RefundReport | None) -> int | str:
    """The amount to add to the payment's refunds from a cumulative report, or why nothing is added (a note)."""
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
