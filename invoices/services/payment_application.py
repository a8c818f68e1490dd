"""Applying money received (a succeeded payment) to an invoice: allocation over its installments, overpayment,
the reporting facts of the payment, and the status changes and events that follow (docs/adr/0023)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from invoices import calc
from invoices.models import (
    OPEN_STATUSES,
    Installment,
    InstallmentStatus,
    Invoice,
    InvoiceStatus,
    LineItem,
    PaymentApplication,
    PaymentApplicationTax,
)
from invoices.render import installment_representation
from invoices.selectors import invoice_render, with_relations
from invoices.services._inputs import lapse_time
from invoices.services._support import emit, lock, set_status
from invoices.services.report_rollup import rollup_add_application
from invoices.states import STATUS_EVENTS, check_installment_transition, check_transition
from paytrust.errors import Conflict, Unprocessable, ValidationError

logger = logging.getLogger("paytrust.invoices")

# The invoice columns an application may change.
_APPLICATION_FIELDS = [
    "status",
    "amount_paid_minor",
    "overpaid_minor",
    "paid_at",
    "expired_at",
    "lapses_at",
    "updated_at",
]


@dataclass(frozen=True)
class PaymentApplicationResult:
    application: PaymentApplication
    invoice: Invoice
    replayed: bool  # True when this payment_id had already been applied (nothing changed this time)


@dataclass
class _Allocation:
    """How a payment's amount is spread: per installment, applied in total, and the installments it completed."""

    allocations: list[dict] = field(default_factory=list)
    completed: list[Installment] = field(default_factory=list)
    applied: int = 0


def invoice_apply_payment(
    *,
    invoice_id: str,
    payment_id: str,
    amount_minor: int,
    currency: str,
    installment_number: int | None,
    paid_at: datetime,
    payments: list[dict],
) -> PaymentApplicationResult:
    """Apply money received (a succeeded payment) to the invoice. Idempotent per `payment_id`.

    Under the invoice row lock: allocates `amount_minor` to the target installment (`installment_number`, default
    the lowest unpaid), then the following installments in order, then any earlier unpaid ones; what is left
    above the invoice's amount due is recorded as overpayment. Installments move unpaid -> partially_paid ->
    paid (`installment.paid` per installment completed); the invoice moves pending -> partially_paid -> paid
    (`invoice.partially_paid`, `invoice.paid`). One PaymentApplication row records payment_id, amount, the
    allocation per installment and the overpaid part, and - the reporting facts - the merchant, mode, gateway,
    the tax / service fee / taxable base the payment carries and their split per tax rate
    (PaymentApplicationTax rows; rules in `invoices.calc.carried_by_payment`). The events' invoice lists
    `payments`: the invoice's payments as the payments layer renders them, read in the caller's transaction.

    - The same payment_id again returns the stored result (`replayed=True`) and changes nothing; with a different
      invoice, amount or currency it gives 409 `payment_application_mismatch`.
    - `currency` must be the invoice's (else 422 `currency_mismatch`, nothing written).
    - The invoice must have had a payment initiated (else 409 `invoice_not_initiated`).
    - `paid_at` (the gateway's paid time) at or before the lapse time is paid in time, however late it is
      reported: an invoice the expiry job expired reopens to partially_paid / paid (ADR 0025).
    - Money is never refused: for an invoice that is already paid or void, or expired with `paid_at` after its
      lapse time - or still open but whose lapse time passed before `paid_at` (it is expired first, recording
      `invoice.expired`) - the whole amount is recorded as overpayment (unapplied, for refund).
    """
    _check_arguments(payment_id=payment_id, amount_minor=amount_minor, paid_at=paid_at)
    now = timezone.now()
    with transaction.atomic():
        invoice = lock(invoice_id)
        existing = _earlier_application(invoice, payment_id, amount_minor=amount_minor, currency=currency)
        if existing is not None:
            return PaymentApplicationResult(application=existing, invoice=invoice, replayed=True)
        _check_receivable(invoice, currency)
        installments = _locked_installments(invoice, installment_number)
        events: list[str] = []
        if invoice.status in OPEN_STATUSES and invoice.lapses_at < paid_at:
            check_transition(invoice.status, InvoiceStatus.EXPIRED)
            invoice.status = InvoiceStatus.EXPIRED
            invoice.expired_at = now
            events.append(STATUS_EVENTS[InvoiceStatus.EXPIRED])
        allocation = _Allocation()
        if invoice.status in (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID) or _paid_in_time(
            invoice, paid_at
        ):
            allocation = _allocate(installments, amount_minor, installment_number, paid_at)
            _apply_to_invoice(invoice, installments, allocation, paid_at, events)
        overpaid = amount_minor - allocation.applied
        invoice.overpaid_minor += overpaid
        invoice.save(update_fields=_APPLICATION_FIELDS)
        application = _record_application(
            invoice,
            installments,
            allocation,
            payment_id=payment_id,
            amount_minor=amount_minor,
            currency=currency,
            installment_number=installment_number,
            paid_at=paid_at,
        )
        if overpaid and invoice.status not in (InvoiceStatus.PAID,):
            logger.warning(
                "payment applied to a closed invoice recorded as overpayment",
                extra={"invoice": invoice.id, "payment": payment_id, "status": invoice.status},
            )
        invoice = with_relations(Invoice.objects.select_related("merchant").filter(pk=invoice.pk)).get()
        _record_events(invoice, allocation.completed, events, payments=payments)
    return PaymentApplicationResult(application=application, invoice=invoice, replayed=False)


def _paid_in_time(invoice: Invoice, paid_at: datetime) -> bool:
    """An expired invoice whose money was paid at or before its lapse time and is reported only now: it reopens
    (ADR 0025). Only an expired invoice that was collecting (payment initiated) reopens; void never does."""
    return (
        invoice.status == InvoiceStatus.EXPIRED
        and invoice.payment_initiated_at is not None
        and paid_at <= invoice.lapses_at
    )


def _check_arguments(*, payment_id: str, amount_minor: int, paid_at: datetime) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValidationError("amount_minor must be a positive integer.", param="amount")
    if not isinstance(payment_id, str) or not payment_id:
        raise ValidationError("payment_id is required.", param="payment_id")
    if paid_at is None or paid_at.tzinfo is None:
        raise ValidationError("paid_at must be a timezone-aware datetime.", param="paid_at")


def _earlier_application(
    invoice: Invoice, payment_id: str, *, amount_minor: int, currency: str
) -> PaymentApplication | None:
    """The application of `payment_id` if it was applied already (409 if with another invoice/amount/currency)."""
    existing = PaymentApplication.objects.filter(payment_id=payment_id).first()
    if existing is not None and (existing.invoice_id, existing.amount_minor, existing.currency) != (
        invoice.id,
        amount_minor,
        currency,
    ):
        raise Conflict(
            f"Payment {payment_id} was already applied with a different invoice, amount or currency.",
            code="payment_application_mismatch",
        )
    return existing


def _locked_installments(invoice: Invoice, installment_number: int | None) -> list[Installment]:
    installments = list(Installment.objects.select_for_update().filter(invoice=invoice).order_by("number"))
    if installment_number is not None and not any(i.number == installment_number for i in installments):
        raise ValidationError(f"installment must be between 1 and {len(installments)}.", param="installment")
    return installments


def _check_receivable(invoice: Invoice, currency: str) -> None:
    if currency != invoice.currency:
        raise Unprocessable(
            f"Payment currency {currency} does not match the invoice currency {invoice.currency}.",
            code="currency_mismatch",
            param="currency",
        )
    if invoice.payment_initiated_at is None:
        raise Conflict("No payment was initiated for this invoice.", code="invoice_not_initiated")


def _allocation_order(installments: list[Installment], target: int) -> list[Installment]:
    index = next(i for i, inst in enumerate(installments) if inst.number == target)
    return installments[index:] + installments[:index]


def _allocate(
    installments: list[Installment], amount_minor: int, installment_number: int | None, paid_at: datetime
) -> _Allocation:
    """Spread the amount over the (locked) installments from the target on, updating them; returns how."""
    result = _Allocation()
    unpaid = [inst for inst in installments if inst.status != InstallmentStatus.PAID]
    target = installment_number if installment_number is not None else unpaid[0].number
    remaining = amount_minor
    for inst in _allocation_order(installments, target):
        if remaining == 0:
            break
        take = min(remaining, inst.amount_due_minor)
        if take == 0:
            continue
        remaining -= take
        inst.amount_paid_minor += take
        new_status = (
            InstallmentStatus.PAID
            if inst.amount_paid_minor == inst.amount_minor
            else InstallmentStatus.PARTIALLY_PAID
        )
        check_installment_transition(inst.status, new_status)
        inst.status = new_status
        if new_status == InstallmentStatus.PAID:
            inst.paid_at = paid_at
            result.completed.append(inst)
        result.allocations.append({"number": inst.number, "amount": take})
    result.applied = amount_minor - remaining
    changed = [i for i in installments if any(a["number"] == i.number for a in result.allocations)]
    Installment.objects.bulk_update(changed, ["amount_paid_minor", "status", "paid_at"])
    return result


def _apply_to_invoice(
    invoice: Invoice,
    installments: list[Installment],
    allocation: _Allocation,
    paid_at: datetime,
    events: list[str],
) -> None:
    invoice.amount_paid_minor += allocation.applied
    if invoice.status == InvoiceStatus.EXPIRED:  # reopened by money paid in time (ADR 0025)
        invoice.expired_at = None
    if invoice.amount_paid_minor == invoice.total_minor:
        set_status(invoice, InvoiceStatus.PAID, events)
        invoice.paid_at = paid_at
    else:
        set_status(invoice, InvoiceStatus.PARTIALLY_PAID, events)
        invoice.lapses_at = lapse_time(invoice.expires_at, installments, received=True)


def _carried_by(invoice: Invoice, installments: list[Installment], allocations: list[dict]) -> calc.Carried:
    """What a payment allocated as `allocations` carries of the invoice's tax, fee and taxable base (reporting
    facts; rules in `calc.carried_by_payment`). Read under the invoice lock: earlier applications are stable."""
    if not allocations:
        return calc.Carried(tax_minor=0, fee_minor=0, taxable_minor=0, by_rate=())
    earlier = list(
        PaymentApplication.objects.filter(invoice=invoice).values_list(
            "allocations", "tax_minor", "taxable_minor"
        )
    )
    lines = LineItem.objects.filter(invoice=invoice).values_list("tax_rate", "subtotal_minor", "tax_minor")
    return calc.carried_by_payment(
        installments=[
            calc.InstallmentShares(inst.number, inst.amount_minor, inst.tax_share_minor, inst.fee_share_minor)
            for inst in installments
        ],
        rates=calc.rate_bases(list(lines)),
        earlier_allocations=[row[0] for row in earlier],
        allocations=allocations,
        earlier_tax_minor=sum(row[1] for row in earlier),
        earlier_taxable_minor=sum(row[2] for row in earlier),
    )


def _record_application(
    invoice: Invoice,
    installments: list[Installment],
    allocation: _Allocation,
    *,
    payment_id: str,
    amount_minor: int,
    currency: str,
    installment_number: int | None,
    paid_at: datetime,
) -> PaymentApplication:
    """The PaymentApplication row and its per-tax-rate PaymentApplicationTax rows."""
    carried = _carried_by(invoice, installments, allocation.allocations)
    try:
        with transaction.atomic():
            application = PaymentApplication.objects.create(
                payment_id=payment_id,
                invoice=invoice,
                merchant_id=invoice.merchant_id,
                mode=invoice.mode,
                gateway=invoice.gateway,
                currency=currency,
                amount_minor=amount_minor,
                applied_minor=allocation.applied,
                overpaid_minor=amount_minor - allocation.applied,
                tax_minor=carried.tax_minor,
                fee_minor=carried.fee_minor,
                taxable_minor=carried.taxable_minor,
                target_installment=installment_number,
                allocations=allocation.allocations,
                paid_at=paid_at,
            )
            taxes = PaymentApplicationTax.objects.bulk_create(
                PaymentApplicationTax(
                    application=application,
                    merchant_id=invoice.merchant_id,
                    mode=invoice.mode,
                    gateway=invoice.gateway,
                    currency=currency,
                    paid_at=paid_at,
                    tax_rate=row.tax_rate,
                    taxable_minor=row.taxable_minor,
                    tax_minor=row.tax_minor,
                )
                for row in carried.by_rate
            )
            rollup_add_application(application=application, taxes=taxes)  # the report's daily rollup
    except IntegrityError:
        # Same payment id applied concurrently to another invoice (this invoice's lock serialises the rest).
        raise Conflict(
            f"Payment {payment_id} was already applied to another invoice.",
            code="payment_application_mismatch",
        )
    return application


def _record_events(
    invoice: Invoice, completed: list[Installment], events: list[str], *, payments: list[dict]
) -> None:
    """`installment.paid` per installment completed (with the invoice embedded), then the invoice's own events."""
    invoice_data = invoice_render(invoice, payments=payments)
    for inst in completed:
        data = installment_representation(inst, invoice.currency)
        data.update({"object": "installment", "invoice": invoice_data})
        emit(invoice, "installment.paid", payments=payments, data=data)
    for event in events:
        emit(invoice, event, payments=payments, data=invoice_data)
