"""Expiring an invoice whose lapse time passed with money still due (docs/adr/0021). The periodic job and
`manage.py expire_invoices` live in the payments app, which walks the overdue invoices and passes each one's
payments for the `invoice.expired` event."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from invoices.models import Invoice, InvoiceStatus
from invoices.services._support import emit, set_status
from invoices.states import is_overdue


def invoice_expire(*, invoice_id: str, payments: list[dict], now: datetime | None = None) -> bool:
    """Move one overdue open invoice to `expired` (records `invoice.expired`, whose invoice lists `payments`:
    the invoice's payments as the payments layer renders them). Idempotent: returns False and changes nothing
    when the invoice is not (or no longer) overdue, or is locked by a payment operation right now (the next run
    takes it)."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("merchant")
            .filter(pk=invoice_id)
            .first()
        )
        if invoice is None or not is_overdue(invoice, now):
            return False
        expire_locked(invoice, now, payments=payments)
    return True


def expire_locked(invoice: Invoice, now: datetime, *, payments: list[dict]) -> None:
    """The expiry of an invoice the caller holds locked and found overdue."""
    events: list[str] = []
    set_status(invoice, InvoiceStatus.EXPIRED, events)
    invoice.expired_at = now
    invoice.save(update_fields=["status", "expired_at", "updated_at"])
    for event in events:
        emit(invoice, event, payments=payments)
