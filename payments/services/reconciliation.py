"""Reconciliation: ask the gateway for the truth about payments whose outcome we do not know (or that should have
ended) and apply it through `payment_apply_gateway_status`, the webhook path (docs/adr/0030)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gateways import base as gw
from gateways.registry import gateway_for_account
from payments.models import OPEN_STATUSES, GatewayCallOperation, Payment, PaymentStatus
from payments.services._support import gateway_call
from payments.services.application import ApplyOutcome, GatewayStatusUpdate, payment_apply_gateway_status
from payments.services.capture import HOLD_OPERATION_STALE_AFTER, authorization_settle
from paytrust.errors import ApplicationError, GatewayError
from paytrust.jobs import app, defer_in_transaction

# Declared in payments/tasks.py (which imports this package, so it is named here rather than imported).
RECONCILE_PAYMENT_TASK = "payments.reconcile_payment"

logger = logging.getLogger("paytrust.payments")

# An `initiating` payment older than this lost its initiating request (crash between phases).
INITIATING_STALE_AFTER = timedelta(seconds=60)
# A `pending` payment this long past its expiry is asked about (the gateway's expiry webhook may be late: Midtrans
# promises up to 90 s).
PENDING_EXPIRY_GRACE = timedelta(seconds=120)
# Backoff per payment: 1, 2, 4, … minutes, at most one hour between asks.
RECONCILE_BACKOFF_BASE = timedelta(minutes=1)
RECONCILE_BACKOFF_MAX = timedelta(hours=1)


@dataclass
class ReconcileSummary:
    checked: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: int = 0


def _backoff(attempts: int) -> timedelta:
    return min(RECONCILE_BACKOFF_BASE * (2 ** min(attempts, 10)), RECONCILE_BACKOFF_MAX)


def payments_to_reconcile(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of payments whose truth we should ask the gateway for: `unknown`; `initiating` older than a minute;
    `pending` past expiry (plus a grace for the gateway's own expiry webhook); `authorized` past `capture_before`
    or with a capture/void whose answer never came (docs/adr/0047). Each at most once per backoff."""
    now = now or timezone.now()
    candidates = Payment.objects.filter(
        Q(status=PaymentStatus.UNKNOWN)
        | Q(status=PaymentStatus.INITIATING, created_at__lte=now - INITIATING_STALE_AFTER)
        | Q(status=PaymentStatus.PENDING, expires_at__lte=now - PENDING_EXPIRY_GRACE)
        | Q(status=PaymentStatus.AUTHORIZED, capture_before__lte=now)
        | Q(status=PaymentStatus.AUTHORIZED, hold_operation_at__lte=now - HOLD_OPERATION_STALE_AFTER)
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
        refund=result.refund,
    )


def _gateway_call(payment: Payment, operation: str, fn) -> tuple[Any, GatewayError | None]:
    return gateway_call(
        payment,
        operation,
        fn,
        request={"payment_id": payment.id, "gateway_reference": payment.gateway_reference},
    )


def payment_reconcile(*, payment_id: str, now: datetime | None = None) -> ApplyOutcome | None:
    """Ask the gateway for one payment's truth and apply it through `payment_apply_gateway_status` (the webhook
    path). Never inside a transaction. Returns None when there was nothing to do or the gateway could not say.

    - found: the gateway's status is applied (a `pending` payment past its expiry that the gateway still shows
      pending is expired at the gateway first, so no money can arrive afterwards);
    - not found: nobody was ever given a payment URL for it (PayTrust answered the initiation with an error), so
      an `initiating`/`unknown` payment is failed (`gateway_payment_not_found`) and a `pending` one past expiry
      is expired. Not for an `initiating` payment younger than INITIATING_STALE_AFTER: its create call may not
      have reached the gateway yet (a void's job can ask in that window), so that answer is not final and the
      payment is left to phase 3 of its initiation (which closes it) or a later reconciliation;
    - a transient error: tried again after a backoff (1, 2, 4 … minutes, at most hourly);
    - an `authorized` payment: `capture.authorization_settle` (captured elsewhere, lapsed, its invoice voided).
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
    if payment.status == PaymentStatus.AUTHORIZED:
        return authorization_settle(payment=payment, result=result, error=error, now=now)
    past_expiry = payment.expires_at is not None and payment.expires_at <= now
    if result is not None and result.status == gw.GatewayOutcome.PENDING and past_expiry:
        # Still open at the gateway although it should have ended (its deadline passed, or its invoice was
        # voided): close it there first, so no money can arrive afterwards.
        result, error = _gateway_call(
            payment,
            GatewayCallOperation.EXPIRE_PAYMENT,
            lambda: adapter.expire_payment(payment_id=payment.id, gateway_reference=reference),
        )
    if isinstance(error, gw.GatewayPaymentNotFound):
        if payment.status == PaymentStatus.PENDING and not past_expiry:
            return None
        if payment.status == PaymentStatus.INITIATING and payment.created_at > now - INITIATING_STALE_AFTER:
            return None  # its create may still be on its way to the gateway: not a final answer
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


def payment_close_at_gateway(*, payment_id: str) -> ApplyOutcome | None:
    """Expire a payment's checkout at the gateway now and record the gateway's answer (`expired`, or whatever it
    says the payment became, e.g. paid a moment before). Never inside a transaction. When the gateway cannot
    answer, the payment (past its deadline) is left to reconciliation, which expires it the same way."""
    payment = Payment.objects.select_related("gateway_account").get(pk=payment_id)
    adapter = gateway_for_account(payment.gateway_account)
    result, error = _gateway_call(
        payment,
        GatewayCallOperation.EXPIRE_PAYMENT,
        lambda: adapter.expire_payment(
            payment_id=payment.id, gateway_reference=payment.gateway_reference or None
        ),
    )
    if error is not None:
        logger.warning(
            "closing a payment at the gateway failed", extra={"payment": payment.id, "code": error.code}
        )
        return None
    update = _status_update_from(result, fallback_currency=payment.currency)
    return payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=replace(update, payment_url=""),  # a closed payment's checkout is never handed out
        source="reconciliation",
    )


def payments_reconcile_queue(*, payment_ids: list[str]) -> int:
    """Queue a `payments.reconcile_payment` job for each of the given payments that is still open (the others
    are final: nothing to ask). The admin's "Reconcile" uses it, so no gateway is called inside a web request.
    Returns how many were queued."""
    open_ids = list(
        Payment.objects.filter(pk__in=payment_ids, status__in=OPEN_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if open_ids:
        with transaction.atomic():
            defer_in_transaction(app.tasks[RECONCILE_PAYMENT_TASK], *({"payment_id": pk} for pk in open_ids))
    return len(open_ids)


def payments_reconcile(
    *, now: datetime | None = None, limit: int = 500, payment_ids: list[str] | None = None
) -> ReconcileSummary:
    """Reconcile every payment due (or the given ids). One failure does not stop the others."""
    ids = payment_ids if payment_ids is not None else payments_to_reconcile(now=now, limit=limit)

    def reconcile_one(pk: str) -> bool:
        outcome = payment_reconcile(payment_id=pk, now=now)
        return outcome is not None and outcome.changed

    return reconcile_each(ids, reconcile_one, what="payment")


def reconcile_each(ids, reconcile_one, *, what: str) -> ReconcileSummary:
    """Run `reconcile_one(id) -> changed` for each id; one failure (logged) does not stop the others."""
    summary = ReconcileSummary()
    for pk in ids:
        summary.checked += 1
        try:
            changed = reconcile_one(pk)
        except ApplicationError as exc:
            summary.errors += 1
            logger.warning(f"{what} reconciliation failed", extra={what: pk, "code": exc.code})
            continue
        except Exception:  # noqa: BLE001 - keep going; logged with traceback
            summary.errors += 1
            logger.exception(f"{what} reconciliation crashed", extra={what: pk})
            continue
        if changed:
            summary.changed += 1
        else:
            summary.unchanged += 1
    return summary
