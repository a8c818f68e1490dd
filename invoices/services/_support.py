"""What every invoice use case shares: the row lock, the status change, the outbound event, the prefetch cache."""

from __future__ import annotations

from collections.abc import Sequence

from invoices.models import Invoice
from invoices.selectors import invoice_render
from invoices.states import STATUS_EVENTS, check_transition
from merchants.models import Merchant
from paytrust.errors import NotFound
from paytrust.sql import nowait_or_conflict
from webhooks.outbound import services as webhook_services


class Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


def emit(invoice: Invoice, event_type: str, *, payments: list[dict], data: dict | None = None) -> None:
    """Record an outbound event in the caller's transaction. `data` defaults to the invoice representation, whose
    `payments` list the caller passes (this layer cannot read payments; the payments layer renders them)."""
    webhook_services.event_record(
        merchant=invoice.merchant,
        mode=invoice.mode,
        type=event_type,
        data=data or invoice_render(invoice, payments=payments),
    )


def cache_related(invoice: Invoice, **rows: Sequence) -> None:
    """Put rows we just wrote into the instance's prefetch cache so rendering needs no query."""
    cache = invoice.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, values in rows.items():
        qs = getattr(invoice, name).all()
        qs._result_cache = list(values)
        qs._prefetch_done = True
        cache[name] = qs


def lock(
    invoice_id: str, *, merchant: Merchant | None = None, mode: str | None = None, nowait: bool = False
) -> Invoice:
    """Re-read the invoice under a row lock (inside the caller's transaction). With `nowait`, a row already locked
    by another transaction gives 409 `payment_in_progress` instead of waiting."""
    # of=("self",): lock the invoice row only, never the joined merchant row.
    qs = (
        Invoice.objects.select_for_update(nowait=nowait, of=("self",))
        .select_related("merchant")
        .filter(pk=invoice_id)
    )
    if merchant is not None:
        qs = qs.filter(merchant=merchant, mode=mode)
    if nowait:
        with nowait_or_conflict():
            invoice = qs.first()
    else:
        invoice = qs.first()
    if invoice is None:
        raise NotFound(f"No such invoice: {invoice_id!r}.", param="id")
    return invoice


def set_status(invoice: Invoice, target: str, events: list[str]) -> None:
    """Move the (locked) invoice to `target` if the transitions table allows it; note the event to record."""
    if invoice.status == target:
        return
    check_transition(invoice.status, target)
    invoice.status = target
    events.append(STATUS_EVENTS[target])
