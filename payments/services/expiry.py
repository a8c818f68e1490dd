"""Expiring overdue invoices, driven from the payments layer so that each `invoice.expired` event lists the
invoice's payments (docs/adr/0021). The periodic job (`payments.tasks.expire_overdue_invoices`) and
`manage.py expire_invoices` call `invoices_expire_overdue`; the admin action calls `invoice_expire_with_payments`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from invoices.selectors import invoices_overdue
from invoices.services import invoice_expire
from payments.selectors import invoice_payments


def invoice_expire_with_payments(*, invoice_id: str, now: datetime | None = None) -> bool:
    """Expire one overdue open invoice (`invoices.services.invoice_expire`: idempotent, skips an invoice a payment
    operation holds locked), its event listing the invoice's payments read in the same transaction. True if it
    expired it now."""
    now = now or timezone.now()
    with transaction.atomic():
        return invoice_expire(
            invoice_id=invoice_id, payments=invoice_payments(invoice_id=invoice_id), now=now
        )


def invoices_expire_overdue(
    *, now: datetime | None = None, batch_size: int = 500, progress: Callable[[int], object] | None = None
) -> int:
    """Expire every open invoice whose lapse time has passed, one short transaction each. Returns the count.
    Safe to run concurrently with itself and with payments (row locks; skip what is locked). `progress(1)` is
    called after each invoice looked at (the command's progress bar)."""
    now = now or timezone.now()
    expired = 0
    after: tuple[datetime, str] | None = None
    while batch := invoices_overdue(now=now, after=after, limit=batch_size):
        for _lapses_at, pk in batch:
            if invoice_expire_with_payments(invoice_id=pk, now=now):
                expired += 1
            if progress is not None:
                progress(1)
        after = batch[-1]
    return expired
