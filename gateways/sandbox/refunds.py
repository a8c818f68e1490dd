"""The sandbox gateway's refunds (docs/adr/0046-refunds.md): it plays a remote gateway's refund API.

The outcome of a refund follows the LAST TWO DIGITS of its amount in minor units, so a test (or a person) picks it:

- `…13` (IDR 10,013; USD 5.13): FAILED, "insufficient balance" (nothing refunded);
- `…42` (IDR 10,042; USD 5.42): PENDING: it waits until someone completes or fails it on the payment's sandbox
  checkout page (buttons under "Refunds"); PayTrust learns the outcome by asking `get_refund` (the page asks
  PayTrust to reconcile that refund at once, as a real gateway's notification would; otherwise the reconciliation
  job does, after REFUND_RECONCILE_AFTER_SECONDS);
- anything else: SUCCEEDED at once.

Refunds are idempotent per refund id (our ref_ id, unique per session): a resend returns the refund as it is.
The session's `amount_refunded_minor` counts the succeeded refunds (what `get_status` reports as the cumulative
refunded total); succeeded plus pending never exceed what was paid.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from gateways.base import GatewayRefundNotFound, RefundRequest
from gateways.models import (
    GatewayAccount,
    SandboxCheckoutSession,
    SandboxCheckoutStatus,
    SandboxRefund,
    SandboxRefundStatus,
)
from gateways.sandbox.services import sandbox_session_get
from paytrust.errors import Conflict, GatewayError, NotFound, PermissionError_, ValidationError

FAILS_WITH = 13  # amount_minor % 100
STAYS_PENDING_WITH = 42
INSUFFICIENT_BALANCE = "insufficient balance"
SETTLE_ACTIONS = {"refund_succeed": SandboxRefundStatus.SUCCEEDED, "refund_fail": SandboxRefundStatus.FAILED}


def outcome_for_amount(amount_minor: int) -> str:
    ending = amount_minor % 100
    if ending == FAILS_WITH:
        return SandboxRefundStatus.FAILED
    if ending == STAYS_PENDING_WITH:
        return SandboxRefundStatus.PENDING
    return SandboxRefundStatus.SUCCEEDED


def sandbox_refund(*, account: GatewayAccount, request: RefundRequest) -> SandboxRefund:
    """Refund part of a paid session. Idempotent per refund id; over-refunding is refused."""
    session = sandbox_session_get(
        account=account, payment_id=request.payment_id, gateway_reference=request.gateway_reference
    )
    with transaction.atomic():
        session = SandboxCheckoutSession.objects.select_for_update().get(pk=session.pk)
        existing = SandboxRefund.objects.filter(session=session, refund_id=request.refund_id).first()
        if existing is not None:
            return existing
        if session.status != SandboxCheckoutStatus.SUCCEEDED:
            raise GatewayError("Only a paid sandbox checkout can be refunded.", code="gateway_rejected")
        pending = (
            session.refunds.filter(status=SandboxRefundStatus.PENDING).aggregate(total=Sum("amount_minor"))[
                "total"
            ]
            or 0
        )
        if request.amount_minor <= 0 or (
            session.amount_refunded_minor + pending + request.amount_minor > session.amount_paid_minor
        ):
            raise GatewayError("The refund exceeds what was paid.", code="gateway_rejected")
        status = outcome_for_amount(request.amount_minor)
        refund = SandboxRefund.objects.create(
            session=session,
            refund_id=request.refund_id,
            amount_minor=request.amount_minor,
            status=status,
            failure_message=INSUFFICIENT_BALANCE if status == SandboxRefundStatus.FAILED else "",
            completed_at=None if status == SandboxRefundStatus.PENDING else timezone.now(),
        )
        if status == SandboxRefundStatus.SUCCEEDED:
            session.amount_refunded_minor += request.amount_minor  # row is locked
            session.save(update_fields=["amount_refunded_minor", "updated_at"])
    return refund


def sandbox_refund_get(
    *, account: GatewayAccount, refund_id: str, payment_id: str, gateway_reference: str
) -> SandboxRefund:
    session = sandbox_session_get(
        account=account, payment_id=payment_id, gateway_reference=gateway_reference or None
    )
    refund = SandboxRefund.objects.filter(session=session, refund_id=refund_id).first()
    if refund is None:
        raise GatewayRefundNotFound(f"The sandbox has no refund {refund_id}.")
    return refund


def sandbox_refund_settle(*, token: str, nonce: str, refund_id: str, action: str) -> SandboxRefund:
    """The checkout page's refund buttons: complete (`refund_succeed`) or fail (`refund_fail`) a pending refund.
    The form nonce is checked as for the payment actions. Settling an already settled refund is a 409."""
    if action not in SETTLE_ACTIONS:
        raise ValidationError(f"action must be one of {', '.join(SETTLE_ACTIONS)}.", param="action")
    with transaction.atomic():
        session = SandboxCheckoutSession.objects.select_for_update().filter(token=token).first()
        if session is None:
            raise NotFound("No such checkout.")
        if not secrets.compare_digest(session.form_nonce.encode(), str(nonce or "").encode()):
            raise PermissionError_(
                "This form is stale or was not served by this checkout page; reload the page.",
                code="checkout_nonce_invalid",
            )
        refund = (
            SandboxRefund.objects.select_for_update().filter(session=session, refund_id=refund_id).first()
        )
        if refund is None:
            raise NotFound(f"This checkout has no refund {refund_id}.")
        if refund.status != SandboxRefundStatus.PENDING:
            raise Conflict(f"Refund {refund_id} is already {refund.status}.", code="refund_settled")
        refund.status = SETTLE_ACTIONS[action]
        refund.completed_at = timezone.now()
        if refund.status == SandboxRefundStatus.FAILED:
            refund.failure_message = "declined in the sandbox checkout"
        else:
            session.amount_refunded_minor += refund.amount_minor  # row is locked
            session.save(update_fields=["amount_refunded_minor", "updated_at"])
        refund.save(update_fields=["status", "completed_at", "failure_message"])
    return refund
