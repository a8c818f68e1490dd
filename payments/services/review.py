"""The review of a payment the risk check flagged (docs/adr/0053-risk-scoring.md): finance approves or rejects it
in the admin's review queue (payments/review_admin.py).

The decision is recorded first, under the payment's lock (only a `pending` review can be decided: 409
`payment_not_under_review` otherwise, so two staff deciding at once never both act), and committed; then the money
follows through the existing services, with no transaction open:
- approve: a held authorization (`authorized`, capture_method manual) is captured in full (`payment_capture`);
  anything else goes on as it was;
- reject: a held authorization is voided (`payment_void`); a succeeded payment is refunded of all that is still
  refundable (`refund_create`, origin admin); a checkout still open (initiating/pending/unknown) is expired at
  the gateway (`payment_close_at_gateway`); a failed, expired or canceled payment needs nothing.
If the gateway refuses or times out, the decision stands and the outcome says so (the payment stays as the gateway
left it: capture or void through the API, refund again from the payment admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from payments.models import Payment, PaymentStatus, RefundOrigin, ReviewStatus
from payments.selectors import payment_refundable_minor
from payments.services.capture import payment_capture, payment_void
from payments.services.reconciliation import payment_close_at_gateway
from payments.services.refunds import refund_create
from paytrust.errors import ApplicationError, Conflict, NotFound

REFUND_REASON = "Rejected by the risk review."


@dataclass(frozen=True)
class ReviewOutcome:
    payment: Payment
    action: str  # what followed the decision: captured, voided, refunded, expired, none; or "<action>_failed"
    detail: str = ""  # the refund id, or the gateway's / service's message when the action failed


def _decide(*, payment_id: str, approve: bool, reviewer: str, now: datetime) -> Payment:
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("merchant", "gateway_account")
            .filter(pk=payment_id)
            .first()
        )
        if payment is None:
            raise NotFound(f"No such payment: {payment_id!r}.", param="id")
        if payment.review_status != ReviewStatus.PENDING:
            raise Conflict(
                f"Payment {payment.id} is not waiting for a review (review: {payment.review_status}).",
                code="payment_not_under_review",
            )
        payment.review_status = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
        payment.reviewed_by = reviewer[:200]
        payment.reviewed_at = now
        payment.save(update_fields=["review_status", "reviewed_by", "reviewed_at", "updated_at"])
    return payment


def payment_review_approve(*, payment_id: str, reviewer: str, now: datetime | None = None) -> ReviewOutcome:
    """Approve a flagged payment; capture it in full if it is held."""
    payment = _decide(payment_id=payment_id, approve=True, reviewer=reviewer, now=now or timezone.now())
    if payment.status != PaymentStatus.AUTHORIZED:
        return ReviewOutcome(payment=payment, action="none")
    try:
        captured = payment_capture(merchant=payment.merchant, mode=payment.mode, payment_id=payment.id)
    except ApplicationError as exc:
        return ReviewOutcome(payment=_reload(payment), action="capture_failed", detail=exc.message)
    return ReviewOutcome(payment=captured, action="captured")


def payment_review_reject(*, payment_id: str, reviewer: str, now: datetime | None = None) -> ReviewOutcome:
    """Reject a flagged payment: expire its open checkout, then void its hold or refund its money — whatever the
    gateway says the payment is by then (the payer may have paid or authorized a moment before the close)."""
    payment = _decide(payment_id=payment_id, approve=False, reviewer=reviewer, now=now or timezone.now())
    try:
        if payment.status in (PaymentStatus.INITIATING, PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
            payment_close_at_gateway(payment_id=payment.id)
            payment = _reload(payment)
            if payment.status not in (
                PaymentStatus.AUTHORIZED,
                PaymentStatus.SUCCEEDED,
                PaymentStatus.PARTIALLY_REFUNDED,
            ):
                return ReviewOutcome(payment=payment, action="expired")
        if payment.status == PaymentStatus.AUTHORIZED:
            voided = payment_void(merchant=payment.merchant, mode=payment.mode, payment_id=payment.id)
            return ReviewOutcome(payment=voided, action="voided")
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
            if payment_refundable_minor(payment) <= 0:
                return ReviewOutcome(payment=payment, action="none")
            refund = refund_create(
                merchant=payment.merchant,
                mode=payment.mode,
                payment_id=payment.id,
                reason=REFUND_REASON,
                origin=RefundOrigin.ADMIN,
            )
            action = "refund_failed" if refund.status == "failed" else "refunded"
            return ReviewOutcome(payment=_reload(payment), action=action, detail=refund.id)
    except ApplicationError as exc:
        return ReviewOutcome(payment=_reload(payment), action="reject_failed", detail=exc.message)
    return ReviewOutcome(payment=payment, action="none")


def _reload(payment: Payment) -> Payment:
    return Payment.objects.select_related("merchant", "gateway_account").get(pk=payment.pk)
