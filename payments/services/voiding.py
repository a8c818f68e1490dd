"""Voiding an invoice together with its open gateway payments (docs/adr/0021, "Voiding closes the open gateway
payments"). The invoices app only changes the invoice (`invoices.services.invoice_void`); this layer, which owns
the payments, calls it and then closes them, in one transaction."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from invoices.models import Invoice
from invoices.services import invoice_void
from merchants.models import Merchant
from payments.models import OPEN_STATUSES, HoldOperation, Payment, PaymentStatus
from payments.selectors import invoice_payments
from payments.services.reconciliation import RECONCILE_PAYMENT_TASK
from paytrust.errors import Conflict
from paytrust.jobs import app, defer_in_transaction
from paytrust.sql import nowait_or_conflict


def invoice_void_closing_payments(
    *, merchant: Merchant, mode: str, invoice_id: str, now: datetime | None = None
) -> Invoice:
    """Void the caller's invoice (draft/pending with no money received, else 409; records `invoice.voided` with
    the invoice's payments as they were before closing) and close its open payments, in ONE transaction: a void
    that fails changes no payment and queues nothing.

    Lock order: the invoice's open payments (FOR UPDATE, by id), then the invoice (in `invoice_void`) - the order
    payment application takes (`payment_apply_gateway_status` locks the payment, then `invoice_apply_payment` the
    invoice), so a void and a webhook for one of its payments wait for each other instead of deadlocking.
    Initiation takes the invoice first but never waits for a payment lock (NOWAIT -> 409 `payment_in_progress`).
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_open_payments(merchant=merchant, mode=mode, invoice_id=invoice_id)
        invoice = invoice_void(
            merchant=merchant,
            mode=mode,
            invoice_id=invoice_id,
            payments=invoice_payments(invoice_id=invoice_id),
            now=now,
        )
        payments_close_for_invoice(invoice_id=invoice.id, locked=locked, now=now)
    return invoice


def _lock_open_payments(*, merchant: Merchant, mode: str, invoice_id: str) -> set[str]:
    """Lock the invoice's open payments (initiating, pending, unknown) in id order; their ids."""
    qs = (
        Payment.objects.select_for_update(of=("self",))
        .filter(merchant=merchant, mode=mode, invoice_id=invoice_id, status__in=OPEN_STATUSES)
        .order_by("pk")
    )
    return set(qs.values_list("pk", flat=True))


def payments_close_for_invoice(*, invoice_id: str, locked: set[str], now: datetime) -> list[str]:
    """The invoice was voided (call inside that transaction, after `_lock_open_payments`): its open payments must
    stop taking money.

    Each is made due for expiry now, and a `payments.reconcile_payment` job is deferred in the same transaction:
    it asks the gateway, expires a payment still open there (Xendit `expire!`, Midtrans `expire`, the sandbox's
    session) and applies the answer. A customer who paid just before keeps their payment: it is applied as usual
    and shows as overpayment of the void invoice. If the job fails, the periodic reconciliation finds the payment
    (pending past its expiry). Returns the ids of the payments closed.

    A payment initiated while the void waited for the invoice lock is open too but was not locked first: it is
    locked now without waiting (the invoice is held; waiting could deadlock with a webhook holding that payment),
    and if it is busy the whole void gives 409 `payment_in_progress` (retry).

    An authorized payment's hold is released the same way (docs/adr/0047): it is marked for a void
    (`hold_operation` "void", `capture_before` now, so no capture is accepted any more) and the job voids it at
    the gateway, making it `canceled`. A capture under way on it refuses the whole void (409
    `capture_in_progress`): the money may be arriving."""
    ids = list(
        Payment.objects.filter(invoice_id=invoice_id, status__in=OPEN_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    late = [pk for pk in ids if pk not in locked]
    if late:
        _lock_nowait(late)
    if ids:
        Payment.objects.filter(pk__in=ids).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).update(
            expires_at=now, updated_at=now
        )
        _release_holds(ids, now=now)
        defer_in_transaction(app.tasks[RECONCILE_PAYMENT_TASK], *({"payment_id": pk} for pk in ids))
    return ids


def _lock_nowait(payment_ids: list[str]) -> None:
    qs = (
        Payment.objects.select_for_update(nowait=True, of=("self",)).filter(pk__in=payment_ids).order_by("pk")
    )
    with nowait_or_conflict():
        list(qs.values_list("pk", flat=True))


def _release_holds(payment_ids: list[str], *, now: datetime) -> None:
    """The (locked) authorized ones among the invoice's closing payments: mark them for a void."""
    held = Payment.objects.filter(pk__in=payment_ids, status=PaymentStatus.AUTHORIZED)
    if held.filter(hold_operation=HoldOperation.CAPTURE).exists():
        raise Conflict(
            "A capture of one of the invoice's payments is in progress; the invoice cannot be voided now.",
            code="capture_in_progress",
        )
    held.update(hold_operation=HoldOperation.VOID, hold_operation_at=now, capture_before=now, updated_at=now)
