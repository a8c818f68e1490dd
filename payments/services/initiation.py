"""Initiating a payment for an invoice installment, in three phases so that the gateway is never called inside a
transaction (docs/adr/0030-payment-initiation-and-reconciliation.md).

Locks: phase 1 locks the invoice (NOWAIT, in `invoice_mark_payment_initiated`) and then looks for the
installment's open payment with FOR UPDATE NOWAIT. It takes the two in the opposite order to payment application
and void (payment, then invoice), which is safe only because it never WAITS: a lock held by someone else gives
409 `payment_in_progress` at once. Phase 3 locks the payment row alone.

A payment closed while its create call was on the wire (the invoice voided or expired: the void sets its
`expires_at` to now; or reconciliation already ended it) never hands out its checkout: phase 3 keeps the URL to
itself, expires the session it has just created at the gateway (phase 4, outside any transaction), records the
payment `expired`, and the initiation answers 409 `payment_closed`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from gateways import base as gw
from gateways.registry import gateway_account_mode_mismatch, gateway_class, gateway_for_account
from gateways.selectors import gateway_account_enabled
from invoices.selectors import invoice_get
from invoices.services import invoice_mark_payment_initiated
from payments.models import OPEN_STATUSES, CaptureMethod, GatewayCallOperation, Payment, PaymentStatus
from payments.services._support import emit, gateway_call, set_status
from payments.services.reconciliation import payment_close_at_gateway
from payments.services.risk_check import (
    RiskInput,
    payment_apply_assessment,
    payment_blocked_error,
    payment_blocked_record,
    payment_risk_assess,
)
from paytrust.errors import Conflict, GatewayError, GatewayTimeout, ValidationError
from paytrust.sql import nowait_or_conflict

logger = logging.getLogger("paytrust.payments")

# A payment lives at most this long at the gateway (and never past the invoice's lapse time).
PAYMENT_MAX_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class InitiationResult:
    payment: Payment
    created: bool  # False: an open payment for that installment already existed and is returned as is


def _open_payment_locked(invoice_id: str, installment_number: int) -> Payment | None:
    """The open payment of the installment, locked without waiting (409 payment_in_progress if it is being
    changed right now, e.g. by webhook processing)."""
    qs = Payment.objects.select_for_update(nowait=True).filter(
        invoice_id=invoice_id, installment_number=installment_number, status__in=OPEN_STATUSES
    )
    with nowait_or_conflict():
        return qs.first()


def _phase1_record(
    *,
    invoice_id: str,
    installment_number: int | None,
    now: datetime,
    capture_method: str = CaptureMethod.AUTOMATIC,
    risk: RiskInput | None = None,
) -> tuple[Payment, bool]:
    with transaction.atomic():
        target = invoice_mark_payment_initiated(
            invoice_id=invoice_id, installment_number=installment_number, nowait=True, now=now
        )
        invoice, installment = target.invoice, target.installment
        if not gateway_account_enabled(account_id=invoice.gateway_account_id):
            # Disabled after the invoice was issued: no new charge through it (the transaction rolls back).
            raise Conflict(
                f"The invoice's gateway account {invoice.gateway_account_id} is disabled; no payment can be "
                "started through it.",
                code="gateway_account_disabled",
            )
        if (mismatch := gateway_account_mode_mismatch(invoice.gateway_account)) is not None:
            # Configured before keys were checked against the mode: never charge test money as live (or back).
            raise Conflict(
                f"The invoice's gateway account {invoice.gateway_account_id} cannot take payments: {mismatch} "
                "Update its credentials (PATCH /v1/gateway-accounts/{id}).",
                code="gateway_account_credentials_mismatch",
            )
        existing = _open_payment_locked(invoice.id, installment.number)
        if existing is not None:
            return existing, False
        payment = Payment(
            merchant=invoice.merchant,
            mode=invoice.mode,
            invoice=invoice,
            installment_number=installment.number,
            gateway_account_id=invoice.gateway_account_id,
            gateway=invoice.gateway,
            currency=invoice.currency,
            amount_minor=target.amount_minor,
            expires_at=min(invoice.lapses_at, now + PAYMENT_MAX_LIFETIME),
            capture_method=capture_method,
        )
        set_status(payment, PaymentStatus.INITIATING)
        # Before any gateway call, under the invoice's lock (docs/adr/0053): a block records a failed attempt.
        assessment = payment_risk_assess(invoice=invoice, amount_minor=target.amount_minor, risk=risk)
        payment_apply_assessment(payment, assessment, risk=risk, now=now)
        try:
            with transaction.atomic():
                payment.save(force_insert=True)
        except (
            IntegrityError
        ) as exc:  # the invoice lock serialises initiations; the index guarantees it anyway
            if "payment_one_open_per_installment" in str(exc):
                raise Conflict(
                    "A payment for this installment is already being initiated. Retry shortly.",
                    code="payment_in_progress",
                )
            raise
        if assessment.blocked:
            payment_blocked_record(payment)
    return payment, True


def _check_capture_method(capture_method: str, *, gateway: str) -> None:
    if capture_method not in CaptureMethod.values:
        raise ValidationError(
            f"capture_method must be one of {', '.join(CaptureMethod.values)}.", param="capture_method"
        )
    if capture_method == CaptureMethod.MANUAL and not gateway_class(gateway).supports_manual_capture:
        raise ValidationError(
            f"The {gateway} gateway cannot authorize a payment for a later capture; use capture_method "
            '"automatic".',
            code="capture_method_unsupported",
            param="capture_method",
        )


def _create_request(payment: Payment) -> gw.CreatePaymentRequest:
    invoice = payment.invoice
    count = invoice.installment_plan.get("count") if isinstance(invoice.installment_plan, dict) else None
    description = invoice.description or f"Invoice {invoice.id}"
    if count:
        description = f"{description} (installment {payment.installment_number} of {count})"
    return gw.CreatePaymentRequest(
        payment_id=payment.id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        description=description[:1000],
        expires_at=payment.expires_at,
        customer=gw.Customer(
            name=invoice.customer_name, email=invoice.customer_email, phone=invoice.customer_phone
        ),
        invoice_id=invoice.id,
        installment_number=payment.installment_number,
        capture_method=payment.capture_method,
    )


def _call_gateway_create(payment: Payment) -> tuple[gw.CreatePaymentResult | None, GatewayError | None]:
    """Phase 2: outside any transaction. Records the call (phase 3 does, with the result)."""
    request = _create_request(payment)
    adapter = gateway_for_account(payment.gateway_account)
    return gateway_call(
        payment, GatewayCallOperation.CREATE_PAYMENT, lambda: adapter.create_payment(request), request=request
    )


def _closed_meanwhile(payment: Payment, now: datetime) -> bool:
    """Closed while its create call was on the wire: ended by reconciliation, or its deadline brought to now by a
    void (payments/services/voiding.py) or passed. A success that got there first is not closed."""
    if payment.status in (
        PaymentStatus.SUCCEEDED,
        PaymentStatus.REFUNDED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.AUTHORIZED,  # held already: the merchant captures or voids it
    ):
        return False
    return payment.status != PaymentStatus.INITIATING or (
        payment.expires_at is not None and payment.expires_at <= now
    )


def _phase3_record(
    payment_id: str, result: gw.CreatePaymentResult | None, error: GatewayError | None
) -> tuple[Payment, bool]:
    """Record the create's outcome under the payment's lock; True when the payment was closed meanwhile and the
    checkout just created must be expired at the gateway (phase 4)."""
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",)).select_related("merchant").get(pk=payment_id)
        )
        if result is not None and _closed_meanwhile(payment, timezone.now()):
            # Keep the reference (phase 4 expires the session by it); never store or return the URL.
            payment.gateway_reference = payment.gateway_reference or result.gateway_reference
            payment.save(update_fields=["gateway_reference", "updated_at"])
            return payment, True
        if payment.status != PaymentStatus.INITIATING:
            # A webhook or reconciliation got there first: their word stands; keep what the create told us.
            if result is not None and not payment.payment_url:
                payment.payment_url = result.payment_url
                payment.gateway_reference = payment.gateway_reference or result.gateway_reference
                payment.save(update_fields=["payment_url", "gateway_reference", "updated_at"])
            return payment, False
        if result is not None:
            payment.gateway_reference = result.gateway_reference
            payment.payment_url = result.payment_url
            if result.expires_at is not None:
                # The earlier deadline wins: ours may have been brought forward meanwhile (invoice voided).
                payment.expires_at = min(filter(None, (payment.expires_at, result.expires_at)))
            set_status(payment, PaymentStatus.PENDING)
        elif gw.outcome_unknown(error):
            payment.failure_code = error.code
            payment.failure_message = error.message[:500]
            set_status(payment, PaymentStatus.UNKNOWN)
        else:
            payment.failure_code = error.code
            payment.failure_message = error.message[:500]
            payment.failed_at = timezone.now()
            set_status(payment, PaymentStatus.FAILED)
            emit(payment, PaymentStatus.FAILED)
        payment.save()
    return payment, False


def _phase4_close(payment: Payment) -> None:
    """The checkout phase 2 created belongs to a payment closed meanwhile: expire it at the gateway (no
    transaction open), record the payment `expired` through the common path, and refuse the initiation (409)."""
    payment_close_at_gateway(payment_id=payment.id)
    raise Conflict(
        f"Payment {payment.id} was closed while it was being created (its invoice was voided or has expired); "
        "its checkout has been expired at the gateway.",
        code="payment_closed",
    )


def payment_initiate(
    *,
    merchant,
    mode: str,
    invoice_id: str,
    installment_number: int | None = None,
    capture_method: str = CaptureMethod.AUTOMATIC,
    risk: RiskInput | None = None,
    now: datetime | None = None,
) -> InitiationResult:
    """Start collecting an invoice installment through the invoice's gateway account (SPEC §6).

    Phase 1 (one transaction): lock the invoice NOWAIT (a concurrent caller gets 409 `payment_in_progress`), check
    it is payable and the installment is next in line (409 `installment_out_of_order`, `invoice_expired`, …);
    if an open payment (initiating/pending/unknown) exists for the installment, return it (`created=False`);
    else insert the payment `initiating` for what the installment still owes, and commit.
    Phase 2 (no transaction): the gateway's create_payment with the payment id as external id / idempotency key.
    Phase 3 (payment row locked): `pending` with payment_url / reference / expiry; an unknown outcome (timeout,
    5xx) leaves it `unknown` and raises 504 gateway_error (reconciliation settles it); a permanent gateway
    refusal fails it and raises 502 gateway_error with the gateway's message.
    `capture_method` "manual" (docs/adr/0047) asks the gateway to authorize only; a gateway that cannot hold
    money gives 400 `capture_method_unsupported` before anything is written. An open payment returned as is
    keeps its own capture method.
    Risk (docs/adr/0053; payments/services/risk_check.py): scored in phase 1, before the gateway; a block records
    the attempt as a `failed` payment with the event `payment.blocked` and raises 402 `payment_blocked`; a
    flagged payment proceeds with `review_status` pending.
    """
    now = now or timezone.now()
    invoice = invoice_get(merchant=merchant, mode=mode, invoice_id=invoice_id, related=False)
    _check_capture_method(capture_method, gateway=invoice.gateway)
    payment, created = _phase1_record(
        invoice_id=invoice.id,
        installment_number=installment_number,
        capture_method=capture_method,
        risk=risk,
        now=now,
    )
    if not created:
        return InitiationResult(payment=payment, created=False)
    if payment.failure_code == "payment_blocked":
        raise payment_blocked_error(payment)
    payment = Payment.objects.select_related("invoice", "gateway_account", "merchant").get(pk=payment.pk)
    result, error = _call_gateway_create(payment)
    payment, closed = _phase3_record(payment.pk, result, error)
    if closed:
        _phase4_close(payment)
    if error is not None and payment.status == PaymentStatus.UNKNOWN:
        raise GatewayTimeout(
            f"{error.message} The outcome of payment {payment.id} is unknown; PayTrust will ask the gateway "
            "and settle it (GET /v1/payments/{id}).",
            code=error.code,
            status_code=504,
        )
    if error is not None and payment.status == PaymentStatus.FAILED:
        raise GatewayError(error.message, code=error.code, status_code=502, retryable=error.retryable)
    return InitiationResult(payment=payment, created=True)
