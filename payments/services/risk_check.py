"""The risk check of a payment attempt (SPEC §13, docs/adr/0053-risk-scoring.md), made in initiation's phase 1,
after the invoice is locked and before any gateway call.

- allow: the payment proceeds (its score and reasons recorded on it);
- review: it proceeds flagged (`review_status` pending): a manual-capture payment is held uncaptured until
  finance approves it (capture of an unreviewed payment: 409 `payment_under_review`); the admin's review queue
  approves (captures a held payment) or rejects (voids a hold, refunds a success: payments/services/review.py);
- block: the attempt is recorded as a `failed` payment (failure_code `payment_blocked`, its score and reasons),
  the event `payment.blocked` is recorded in the same transaction, nothing is sent to the gateway, and the API
  answers 402 `payment_blocked` with the payment id and the reasons. Like Stripe's blocked charge: a failed
  attempt, kept for the merchant and for staff.
- the engine failed: the payment proceeds flagged for review with score 50 and reason `risk_engine_error`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from payments.models import Payment, PaymentStatus, ReviewStatus
from payments.selectors import payment_representation
from payments.services._support import set_status
from paytrust.errors import ApplicationError
from risk.rules import RiskAssessment
from risk.services import risk_evaluate
from webhooks.outbound import services as webhook_services
from webhooks.outbound.models import EventType


@dataclass(frozen=True)
class RiskInput:
    """What the merchant's server told us of the payer (validated by the API: an IP address, a device id of at
    most 128 characters)."""

    customer_ip: str | None = None
    device_id: str | None = None


class PaymentBlocked(ApplicationError):
    status_code = 402
    code = "payment_blocked"


def payment_risk_assess(*, invoice, amount_minor: int, risk: RiskInput | None) -> RiskAssessment:
    """Score the attempt (never raises). Call inside phase 1's transaction (the velocity keys stay locked until it
    commits)."""
    risk = risk or RiskInput()
    return risk_evaluate(
        merchant_id=invoice.merchant_id,
        mode=invoice.mode,
        currency=invoice.currency,
        amount_minor=amount_minor,
        email=invoice.customer_email,
        customer_ip=risk.customer_ip,
        device_id=risk.device_id,
    )


def payment_apply_assessment(
    payment: Payment, assessment: RiskAssessment, *, risk: RiskInput | None, now: datetime
) -> None:
    """Write the assessment onto the payment being recorded (not saved here). A block makes it `failed`."""
    risk = risk or RiskInput()
    payment.risk_score = assessment.score
    payment.risk_reasons = assessment.reasons_json()
    payment.customer_ip = risk.customer_ip or None
    payment.device_id = risk.device_id or ""
    if assessment.blocked:
        payment.failure_code = "payment_blocked"
        payment.failure_message = _blocked_message(assessment)[:500]
        payment.failed_at = now
        set_status(payment, PaymentStatus.FAILED)
    elif assessment.flagged:
        payment.review_status = ReviewStatus.PENDING


def payment_blocked_record(payment: Payment) -> None:
    """The event of a blocked attempt, in the caller's transaction (the one that records the payment)."""
    webhook_services.event_record(
        merchant=payment.merchant,
        mode=payment.mode,
        type=EventType.PAYMENT_BLOCKED,
        data=payment_representation(payment),
    )


def payment_blocked_error(payment: Payment) -> PaymentBlocked:
    return PaymentBlocked(
        f"Payment {payment.id} was blocked by the risk check: {payment.failure_message} Nothing was sent to the "
        "gateway.",
        extra={"payment": payment.id, "risk_reasons": payment.risk_reasons},
    )


def payment_record_checkout_ip(*, payment_id: str, ip: str | None) -> None:
    """The payer's IP as the (sandbox) checkout page saw it, kept on the payment for the review queue. The last
    one wins; an unreadable address is ignored. One UPDATE, no lock needed (no other writer touches it)."""
    try:
        address = str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return
    if address:
        Payment.objects.filter(pk=payment_id).update(checkout_ip=address)


def _blocked_message(assessment: RiskAssessment) -> str:
    return f"Risk score {assessment.score}: " + " ".join(reason.message for reason in assessment.reasons)
