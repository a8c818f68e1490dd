"""Reads of invoices. Every merchant-facing read is scoped to (merchant, mode): another tenant's invoice is a 404.

Expiry on read is computed, not written: an open invoice whose lapse time has passed reads (and filters) as
`expired`; the expiry job (payments app) writes the transition and emits `invoice.expired` (docs/adr/0021).

The representation's `payments` list is the caller's to give (`invoices_render(..., payments=...)`): payments are
the payments app's rows, read by `payments.selectors`, and this layer imports nothing above it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from invoices.models import (
    OPEN_STATUSES,
    Installment,
    InstallmentStatus,
    Invoice,
    InvoiceStatus,
    LineItem,
    PaymentApplication,
)
from invoices.render import installment_representation, invoice_representation
from merchants.models import Merchant
from paytrust.errors import NotFound
from paytrust.money import format_amount

# ---- querysets -----------------------------------------------------------------------------------------------


def with_relations(queryset: QuerySet) -> QuerySet:
    """Everything the representation needs, in a constant number of queries per page."""
    return queryset.prefetch_related(
        Prefetch("line_items", queryset=LineItem.objects.order_by("position")),
        Prefetch("installments", queryset=Installment.objects.order_by("number")),
        Prefetch(
            "supplementary_invoices",
            queryset=Invoice.objects.only("id", "parent_invoice_id", "created_at").order_by(
                "created_at", "id"
            ),
        ),
    )


def invoice_get(*, merchant: Merchant, mode: str, invoice_id: str, related: bool = True) -> Invoice:
    qs = Invoice.objects.filter(merchant=merchant, mode=mode, pk=invoice_id)
    if related:
        qs = with_relations(qs)
    invoice = qs.first()
    if invoice is None:
        raise NotFound(f"No such invoice: {invoice_id!r}.", code="resource_missing", param="id")
    return invoice


@dataclass(frozen=True)
class InvoiceFilters:
    status: str | None = None
    currency: str | None = None
    gateway: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    external_id: str | None = None


def status_q(status: str, at: datetime) -> Q:
    """Filter on the *effective* status (an overdue open invoice counts as expired)."""
    if status == InvoiceStatus.EXPIRED:
        return Q(status=InvoiceStatus.EXPIRED) | Q(status__in=OPEN_STATUSES, lapses_at__lte=at)
    if status in OPEN_STATUSES:
        return Q(status=status, lapses_at__gt=at)
    return Q(status=status)


def invoice_list(
    *, merchant: Merchant, mode: str, filters: InvoiceFilters, now: datetime | None = None
) -> QuerySet:
    now = now or timezone.now()
    qs = Invoice.objects.filter(merchant=merchant, mode=mode)
    if filters.status:
        qs = qs.filter(status_q(filters.status, now))
    if filters.currency:
        qs = qs.filter(currency=filters.currency)
    if filters.gateway:
        key = "gateway_account_id" if filters.gateway.startswith("gwa_") else "gateway"
        qs = qs.filter(**{key: filters.gateway})
    if filters.created_gte:
        qs = qs.filter(created_at__gte=filters.created_gte)
    if filters.created_lt:
        qs = qs.filter(created_at__lt=filters.created_lt)
    if filters.external_id:
        qs = qs.filter(external_id=filters.external_id)
    return with_relations(qs)


# ---- representations -----------------------------------------------------------------------------------------


def invoices_render(
    invoices: Iterable[Invoice], *, payments: Mapping[str, list[dict]], now: datetime | None = None
) -> list[dict]:
    """Representations of invoices fetched through `with_relations` (or returned by a service). `payments`:
    {invoice id: its payment objects} for every invoice, which the payments layer renders
    (`payments.selectors.payments_for_invoices`; this layer knows no payment)."""
    now = now or timezone.now()
    return [
        invoice_representation(
            invoice,
            line_items=list(invoice.line_items.all()),
            installments=list(invoice.installments.all()),
            supplementary_ids=[child.id for child in invoice.supplementary_invoices.all()],
            payments=payments[invoice.id],
            now=now,
        )
        for invoice in invoices
    ]


def invoice_render(invoice: Invoice, *, payments: list[dict], now: datetime | None = None) -> dict:
    """One invoice's representation; `payments`: its payment objects (a just-created invoice has none)."""
    return invoices_render([invoice], payments={invoice.id: payments}, now=now)[0]


def invoice_render_created(invoice: Invoice) -> dict:
    """A just-created invoice's representation: the snapshot its `invoice.created` event carries (rendered once
    by `invoice_prepare`, so the response and the event show the same object), else rendered now."""
    snapshot = invoice.__dict__.get(CREATED_SNAPSHOT)
    return snapshot if snapshot is not None else invoice_render(invoice, payments=[])


CREATED_SNAPSHOT = "_created_snapshot"  # instance attribute set by invoices.services.create


def invoice_installments(*, merchant: Merchant, mode: str, invoice_id: str) -> dict:
    invoice = invoice_get(merchant=merchant, mode=mode, invoice_id=invoice_id, related=False)
    rows = Installment.objects.filter(invoice=invoice).order_by("number")
    return {"data": [installment_representation(row, invoice.currency) for row in rows]}


def invoice_overpayment(*, merchant: Merchant, mode: str, invoice_id: str) -> dict:
    """`{"currency", "amount", "payments": [{"payment", "amount"}]}` from the payment application rows."""
    invoice = invoice_get(merchant=merchant, mode=mode, invoice_id=invoice_id, related=False)
    rows = PaymentApplication.objects.filter(invoice=invoice, overpaid_minor__gt=0).order_by(
        "created_at", "id"
    )
    return {
        "currency": invoice.currency,
        "amount": format_amount(invoice.overpaid_minor, invoice.currency),
        "payments": [
            {
                "payment": row.payment_id,
                "amount": format_amount(row.overpaid_minor, invoice.currency),
                "paid_at": row.paid_at.isoformat().replace("+00:00", "Z"),
            }
            for row in rows
        ],
    }


def invoice_next_payable_installment(*, invoice_id: str) -> Installment | None:
    """The lowest-numbered installment that is not fully paid (the only one a payment may be initiated for),
    or None when all are paid. Does not look at the invoice status; see `invoice_check_installment_payable`."""
    return (
        Installment.objects.filter(invoice_id=invoice_id)
        .exclude(status=InstallmentStatus.PAID)
        .order_by("number")
        .first()
    )


def invoice_installment_count(*, invoice_id: str) -> int:
    """How many installments the invoice has (0 for an unknown id): the sandbox checkout page's "1 of 3"."""
    return Installment.objects.filter(invoice_id=invoice_id).count()


def payment_application_get(*, payment_id: str) -> PaymentApplication | None:
    """How a payment's money was applied (None: it has not been)."""
    return PaymentApplication.objects.filter(payment_id=payment_id).first()


def invoice_applications(*, invoice_id: str) -> list[PaymentApplication]:
    """How payments were applied to an invoice (for payments/reporting)."""
    return list(PaymentApplication.objects.filter(invoice_id=invoice_id).order_by("created_at", "id"))


def invoices_overdue(
    *, now: datetime, after: tuple[datetime, str] | None = None, limit: int = 500
) -> list[tuple[datetime, str]]:
    """(lapses_at, id) of open invoices whose lapse time has passed, in that order, from after `after` (a keyset
    cursor: the last pair of the previous page). For the expiry job, which expires each in its own transaction."""
    qs = Invoice.objects.filter(status__in=OPEN_STATUSES, lapses_at__lte=now)
    if after is not None:
        qs = qs.filter(Q(lapses_at__gt=after[0]) | Q(lapses_at=after[0], id__gt=after[1]))
    return list(qs.order_by("lapses_at", "id").values_list("lapses_at", "id")[:limit])


def invoices_overdue_count(*, now: datetime) -> int:
    """How many open invoices are past their lapse time (`manage.py expire_invoices --dry-run`)."""
    return Invoice.objects.filter(status__in=OPEN_STATUSES, lapses_at__lte=now).count()


def invoice_closed_for_payment(*, invoice_id: str, paid_at: datetime) -> bool:
    """Would money paid at `paid_at` land on a closed invoice (void, or past its lapse time and not reopened by the
    paid-in-time rule of ADR 0025)? The same rule `invoice_apply_payment` applies; the payments layer asks first so
    that the payment's own event can say so. Read without a lock: the caller holds the payment's lock, so no void
    can intervene, and expiry only follows the lapse time this rule reads."""
    invoice = Invoice.objects.only("status", "lapses_at", "payment_initiated_at").get(pk=invoice_id)
    if invoice.status == InvoiceStatus.VOID:
        return True
    if invoice.status in OPEN_STATUSES:
        return invoice.lapses_at < paid_at
    if invoice.status == InvoiceStatus.EXPIRED:
        return invoice.payment_initiated_at is None or paid_at > invoice.lapses_at
    return False  # paid: extra money is an ordinary overpayment of a paid invoice
