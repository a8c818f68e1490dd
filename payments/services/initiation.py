"""Initiating a payment for an invoice installment, in three phases so that the gateway is never called inside a
transaction (docs/adr/0030-payment-initiation-and-reconciliation.md).

Locks: phase 1 locks the invoice (NOWAIT, in `invoice_mark_payment_initiated`) and then looks for the
installment's open payment with FOR UPDATE NOWAIT. It takes the two in the opposite order to payment application
and void (payment, then invoice), which is safe only because it never WAITS: a lock held by someone else gives
409 `payment_in_progress` at once. Phase 3 locks the payment row alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from psycopg import errors as pg_errors

from gateways import base as gw
from gateways.registry import gateway_for_account
from invoices.selectors import invoice_get
from invoices.services import invoice_mark_payment_initiated
from payments.models import OPEN_STATUSES, GatewayCallOperation, Payment, PaymentStatus
from payments.services._support import emit, record_call, set_status
from paytrust.errors import Conflict, GatewayError, GatewayTimeout

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
    try:
        with transaction.atomic():
            return qs.first()
    except OperationalError as exc:
        if isinstance(exc.__cause__, pg_errors.LockNotAvailable):
            raise Conflict(
                "Another payment operation on this invoice is in progress. Retry shortly.",
                code="payment_in_progress",
            )
        raise


def _phase1_record(*, invoice_id: str, installment_number: int | None, now: datetime) -> tuple[Payment, bool]:
    with transaction.atomic():
        target = invoice_mark_payment_initiated(
            invoice_id=invoice_id, installment_number=installment_number, nowait=True, now=now
        )
        invoice, installment = target.invoice, target.installment
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
        )
        set_status(payment, PaymentStatus.INITIATING)
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
    return payment, True


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
    )


def _call_gateway_create(payment: Payment) -> tuple[gw.CreatePaymentResult | None, GatewayError | None]:
    """Phase 2: outside any transaction. Records the call (phase 3 does, with the result)."""
    request = _create_request(payment)
    started_at, t0 = timezone.now(), time.perf_counter()
    result: gw.CreatePaymentResult | None = None
    error: GatewayError | None = None
    try:
        result = gateway_for_account(payment.gateway_account).create_payment(request)
    except GatewayError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - an adapter bug: we cannot know whether the gateway created it
        logger.exception("gateway create_payment crashed", extra={"payment": payment.id})
        error = GatewayError(
            f"The {payment.gateway} adapter failed unexpectedly ({type(exc).__name__}).",
            code="gateway_bad_response",
            retryable=True,
        )
    with transaction.atomic():
        record_call(
            payment_id=payment.id,
            operation=GatewayCallOperation.CREATE_PAYMENT,
            started_at=started_at,
            seconds=time.perf_counter() - t0,
            request=request,
            response=result.raw if result is not None else None,
            error=error,
        )
    return result, error


def _phase3_record(
    payment_id: str, result: gw.CreatePaymentResult | None, error: GatewayError | None
) -> Payment:
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",)).select_related("merchant").get(pk=payment_id)
        )
        if payment.status != PaymentStatus.INITIATING:
            # A webhook or reconciliation got there first: their word stands; keep what the create told us.
            if result is not None and not payment.payment_url:
                payment.payment_url = result.payment_url
                payment.gateway_reference = payment.gateway_reference or result.gateway_reference
                payment.save(update_fields=["payment_url", "gateway_reference", "updated_at"])
            return payment
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
    return payment


def payment_initiate(
    *,
    merchant,
    mode: str,
    invoice_id: str,
    installment_number: int | None = None,
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
    """
    now = now or timezone.now()
    invoice = invoice_get(merchant=merchant, mode=mode, invoice_id=invoice_id, related=False)
    payment, created = _phase1_record(invoice_id=invoice.id, installment_number=installment_number, now=now)
    if not created:
        return InitiationResult(payment=payment, created=False)
    payment = Payment.objects.select_related("invoice", "gateway_account", "merchant").get(pk=payment.pk)
    result, error = _call_gateway_create(payment)
    payment = _phase3_record(payment.pk, result, error)
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
