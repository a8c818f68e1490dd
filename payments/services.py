"""Writes for payments: initiation (three phases, the gateway called outside any transaction), the ONE code path
that applies a gateway's word about a payment (webhooks and reconciliation both use it), and reconciliation.

Lock order everywhere: payment row, then invoice row (inside `invoice_apply_payment`). Initiation holds the invoice
lock and never WAITS for a payment lock (it uses NOWAIT and answers 409 payment_in_progress), so the two orders
cannot deadlock. See docs/adr/0030-payment-initiation-and-reconciliation.md.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg import errors as pg_errors

from gateways import base as gw
from gateways.registry import gateway_for_account
from invoices.selectors import invoice_get
from invoices.services import invoice_apply_payment, invoice_mark_payment_initiated
from iso20022.statuses import payment_status_to_pain002
from payments.models import OPEN_STATUSES, GatewayCall, GatewayCallOperation, Payment, PaymentStatus
from payments.selectors import payment_representation
from payments.states import STATUS_EVENTS, can_transition
from paytrust.errors import (
    ApplicationError,
    Conflict,
    GatewayError,
    GatewayTimeout,
    NotFound,
    Unprocessable,
    ValidationError,
)
from paytrust.jobs import defer_in_transaction
from paytrust.redaction import redact
from webhooks.outbound import services as webhook_services

logger = logging.getLogger("paytrust.payments")

# A payment lives at most this long at the gateway (and never past the invoice's lapse time).
PAYMENT_MAX_LIFETIME = timedelta(hours=24)
# Reconciliation: an `initiating` payment older than this lost its initiating request (crash between phases).
INITIATING_STALE_AFTER = timedelta(seconds=60)
# Reconciliation: a `pending` payment this long past its expiry is asked about (the gateway's expiry webhook may be
# late: Midtrans promises up to 90 s).
PENDING_EXPIRY_GRACE = timedelta(seconds=120)
# Reconciliation backoff per payment: 1, 2, 4, … minutes, at most one hour between asks.
RECONCILE_BACKOFF_BASE = timedelta(minutes=1)
RECONCILE_BACKOFF_MAX = timedelta(hours=1)

# Gateway status (contract vocabulary) -> our payment status. Refund statuses are the refunds work's (SPEC §13);
# UNKNOWN never moves a payment.
_TARGETS: dict[str, str] = {
    gw.GatewayOutcome.PENDING: PaymentStatus.PENDING,
    gw.GatewayOutcome.SUCCEEDED: PaymentStatus.SUCCEEDED,
    gw.GatewayOutcome.FAILED: PaymentStatus.FAILED,
    gw.GatewayOutcome.EXPIRED: PaymentStatus.EXPIRED,
}
_SUCCESS_FAMILY = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def _jsonable(value: Any) -> Any:
    """Gateway payloads -> JSON-storable values (Decimal amounts as exact strings, datetimes as ISO 8601)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _set_status(payment: Payment, status: str) -> None:
    payment.status = status
    code, reason = payment_status_to_pain002(status, payment.failure_code or None)
    payment.pain002_status = code
    payment.pain002_reason = reason or ""


def _emit(payment: Payment, status: str) -> None:
    event = STATUS_EVENTS.get(status)
    if event:
        webhook_services.event_record(
            merchant=payment.merchant, mode=payment.mode, type=event, data=payment_representation(payment)
        )


def _record_call(
    *,
    payment_id: str,
    operation: str,
    started_at: datetime,
    seconds: float,
    request: Any,
    response: Any = None,
    error: GatewayError | None = None,
) -> GatewayCall:
    return GatewayCall.objects.create(
        payment_id=payment_id,
        operation=operation,
        started_at=started_at,
        duration_ms=max(0, int(seconds * 1000)),
        outcome="ok" if error is None else error.code,
        request=redact(_jsonable(request or {})),
        response=redact(_jsonable(response or {})),
        error_message="" if error is None else error.message[:500],
    )


# ---- initiation ----------------------------------------------------------------------------------------------


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
        _set_status(payment, PaymentStatus.INITIATING)
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
        _record_call(
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
            _set_status(payment, PaymentStatus.PENDING)
        elif gw.outcome_unknown(error):
            payment.failure_code = error.code
            payment.failure_message = error.message[:500]
            _set_status(payment, PaymentStatus.UNKNOWN)
        else:
            payment.failure_code = error.code
            payment.failure_message = error.message[:500]
            payment.failed_at = timezone.now()
            _set_status(payment, PaymentStatus.FAILED)
            _emit(payment, PaymentStatus.FAILED)
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


# ---- the gateway's word about a payment (webhooks and reconciliation) ---------------------------------------


class PaymentNotFoundForGateway(NotFound):
    code = "payment_unknown_to_paytrust"


@dataclass(frozen=True)
class GatewayStatusUpdate:
    """What a gateway says about one of our payments (from a webhook or a status query)."""

    status: str  # gateways.base.PaymentStatus value
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

        def unchanged(note: str) -> ApplyOutcome:
            return ApplyOutcome(payment=payment, previous_status=previous, changed=False, note=note)

        if target is None:
            return unchanged(f"gateway status {update.status} is not applied to payments")
        if previous == target or (target == PaymentStatus.SUCCEEDED and previous in _SUCCESS_FAMILY):
            return unchanged(f"already {previous}")
        if not can_transition(previous, target):
            return unchanged(f"{previous} -> {target} not allowed; ignored")

        now = timezone.now()
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
            payment.amount_received_minor = update.amount_minor
            payment.succeeded_at = update.occurred_at or now
            fields += ["amount_received_minor", "succeeded_at"]
        elif target in (PaymentStatus.FAILED, PaymentStatus.EXPIRED):
            payment.failure_code, payment.failure_message = _failure_details(update, target)
            stamp_field = "failed_at" if target == PaymentStatus.FAILED else "expired_at"
            setattr(payment, stamp_field, update.occurred_at or now)
            fields += ["failure_code", "failure_message", stamp_field]
        _set_status(payment, target)
        payment.save(update_fields=fields)
        _emit(payment, target)
        note = f"{previous} -> {target}"
        if target == PaymentStatus.SUCCEEDED:
            applied = invoice_apply_payment(
                invoice_id=payment.invoice_id,
                payment_id=payment.id,
                amount_minor=payment.amount_received_minor,
                currency=payment.currency,
                installment_number=payment.installment_number,
                paid_at=payment.succeeded_at,
            )
            application = applied.application
            note += f"; applied {application.applied_minor}, overpaid {application.overpaid_minor}"
    logger.info(
        "payment status applied",
        extra={"payment": payment.id, "from": previous, "to": target, "source": source},
    )
    return ApplyOutcome(payment=payment, previous_status=previous, changed=True, note=note)


# ---- reconciliation ------------------------------------------------------------------------------------------


@dataclass
class ReconcileSummary:
    checked: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: int = 0


def _backoff(attempts: int) -> timedelta:
    return min(RECONCILE_BACKOFF_BASE * (2 ** min(attempts, 10)), RECONCILE_BACKOFF_MAX)


def payments_close_for_invoice(invoice, now: datetime) -> list[str]:
    """The invoice was voided (called inside that transaction): its open payments must stop taking money.

    Each is made due for expiry now, and a `payments.reconcile_payment` job is deferred in the same transaction:
    it asks the gateway, expires a payment still open there (Xendit `expire!`, Midtrans `expire`, the sandbox's
    session) and applies the answer. A customer who paid just before keeps their payment: it is applied as usual
    and shows as overpayment of the void invoice. If the job fails, the periodic reconciliation finds the payment
    (pending past its expiry). Returns the ids of the payments closed."""
    from payments.tasks import reconcile_payment

    ids = list(
        Payment.objects.filter(invoice_id=invoice.id, status__in=OPEN_STATUSES).values_list("pk", flat=True)
    )
    if ids:
        Payment.objects.filter(pk__in=ids).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).update(
            expires_at=now, updated_at=now
        )
        defer_in_transaction(reconcile_payment, *({"payment_id": pk} for pk in ids))
    return ids


def payments_to_reconcile(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of payments whose truth we should ask the gateway for: `unknown`; `initiating` older than a minute;
    `pending` past expiry (plus a grace for the gateway's own expiry webhook). Each at most once per backoff."""
    now = now or timezone.now()
    candidates = Payment.objects.filter(
        Q(status=PaymentStatus.UNKNOWN)
        | Q(status=PaymentStatus.INITIATING, created_at__lte=now - INITIATING_STALE_AFTER)
        | Q(status=PaymentStatus.PENDING, expires_at__lte=now - PENDING_EXPIRY_GRACE)
    ).order_by("created_at", "id")
    due: list[str] = []
    for pk, reconciled_at, attempts in candidates.values_list("pk", "reconciled_at", "reconcile_attempts")[
        : limit * 4
    ]:
        if reconciled_at is None or reconciled_at + _backoff(attempts) <= now:
            due.append(pk)
        if len(due) >= limit:
            break
    return due


def _status_update_from(result: gw.GatewayOutcomeResult, *, fallback_currency: str) -> GatewayStatusUpdate:
    raw = result.raw or {}
    url = raw.get("invoice_url") or raw.get("redirect_url") or ""
    failure = ""
    if result.status == gw.GatewayOutcome.FAILED:
        failure = str(
            raw.get("failure_code") or raw.get("transaction_status") or raw.get("status") or "failed"
        )
    return GatewayStatusUpdate(
        status=result.status,
        amount_minor=result.amount_minor,
        currency=result.currency or fallback_currency,
        occurred_at=result.paid_at,
        gateway_reference=result.gateway_reference,
        payment_url=url if isinstance(url, str) else "",
        failure_code=failure.lower(),
    )


def _gateway_call(payment: Payment, operation: str, fn) -> tuple[Any, GatewayError | None]:
    started_at, t0 = timezone.now(), time.perf_counter()
    result, error = None, None
    try:
        result = fn()
    except GatewayError as exc:
        error = exc
    with transaction.atomic():
        _record_call(
            payment_id=payment.id,
            operation=operation,
            started_at=started_at,
            seconds=time.perf_counter() - t0,
            request={"payment_id": payment.id, "gateway_reference": payment.gateway_reference},
            response=getattr(result, "raw", None),
            error=error,
        )
    return result, error


def payment_reconcile(*, payment_id: str, now: datetime | None = None) -> ApplyOutcome | None:
    """Ask the gateway for one payment's truth and apply it through `payment_apply_gateway_status` (the webhook
    path). Never inside a transaction. Returns None when there was nothing to do or the gateway could not say.

    - found: the gateway's status is applied (a `pending` payment past its expiry that the gateway still shows
      pending is expired at the gateway first, so no money can arrive afterwards);
    - not found: nobody was ever given a payment URL for it (PayTrust answered the initiation with an error), so
      an `initiating`/`unknown` payment is failed (`gateway_payment_not_found`) and a `pending` one past expiry
      is expired;
    - a transient error: tried again after a backoff (1, 2, 4 … minutes, at most hourly).
    """
    now = now or timezone.now()
    payment = Payment.objects.select_related("gateway_account").filter(pk=payment_id).first()
    if payment is None or payment.status not in OPEN_STATUSES:
        return None
    Payment.objects.filter(pk=payment.pk).update(
        reconciled_at=now, reconcile_attempts=payment.reconcile_attempts + 1
    )
    adapter = gateway_for_account(payment.gateway_account)
    reference = payment.gateway_reference or None
    result, error = _gateway_call(
        payment,
        GatewayCallOperation.GET_STATUS,
        lambda: adapter.get_status(payment_id=payment.id, gateway_reference=reference),
    )
    past_expiry = payment.expires_at is not None and payment.expires_at <= now
    if (
        result is not None
        and result.status == gw.GatewayOutcome.PENDING
        and payment.status == PaymentStatus.PENDING
        and past_expiry
    ):
        result, error = _gateway_call(
            payment,
            GatewayCallOperation.EXPIRE_PAYMENT,
            lambda: adapter.expire_payment(payment_id=payment.id, gateway_reference=reference),
        )
    if isinstance(error, gw.GatewayPaymentNotFound):
        if payment.status == PaymentStatus.PENDING and not past_expiry:
            return None
        status = (
            gw.GatewayOutcome.EXPIRED if payment.status == PaymentStatus.PENDING else gw.GatewayOutcome.FAILED
        )
        update = GatewayStatusUpdate(
            status=status,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            occurred_at=now,
            failure_code="gateway_payment_not_found" if status == gw.GatewayOutcome.FAILED else "expired",
            failure_message=error.message,
        )
    elif error is not None:
        logger.warning(
            "reconciliation: gateway could not answer",
            extra={"payment": payment.id, "code": error.code},
        )
        return None
    else:
        update = _status_update_from(result, fallback_currency=payment.currency)
    return payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=update,
        source="reconciliation",
    )


def payments_reconcile(
    *, now: datetime | None = None, limit: int = 500, payment_ids: list[str] | None = None
) -> ReconcileSummary:
    """Reconcile every payment due (or the given ids). One failure does not stop the others."""
    summary = ReconcileSummary()
    for pk in payment_ids if payment_ids is not None else payments_to_reconcile(now=now, limit=limit):
        summary.checked += 1
        try:
            outcome = payment_reconcile(payment_id=pk, now=now)
        except ApplicationError as exc:
            summary.errors += 1
            logger.warning("reconciliation failed", extra={"payment": pk, "code": exc.code})
            continue
        except Exception:  # noqa: BLE001 - keep going; logged with traceback
            summary.errors += 1
            logger.exception("reconciliation crashed", extra={"payment": pk})
            continue
        if outcome is not None and outcome.changed:
            summary.changed += 1
        else:
            summary.unchanged += 1
    return summary
