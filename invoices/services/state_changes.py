"""State changes driven by the merchant or by the payments work: void, and the start of payment collection
(`invoice_mark_payment_initiated`, after which the invoice is immutable). The contract the payments app calls is
described in docs/adr/0023-installments-and-payment-application.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from invoices.models import OPEN_STATUSES, Installment, InstallmentStatus, Invoice, InvoiceStatus
from invoices.selectors import with_relations
from invoices.services._support import emit, lock, set_status
from invoices.services.expiry import expire_locked
from invoices.states import is_overdue
from merchants.models import Merchant
from paytrust.errors import Conflict, ValidationError


def invoice_void(
    *, merchant: Merchant, mode: str, invoice_id: str, payments: list[dict], now: datetime | None = None
) -> Invoice:
    """draft/pending -> void (no money received). Anything else gives 409; records `invoice.voided`, whose
    invoice lists `payments` (the invoice's payments as the payments layer renders them).

    This only changes the invoice: an invoice with open gateway payments is voided through
    `payments.services.invoice_void_closing_payments`, which calls this and then closes the payments in the same
    transaction (the API and the admin go through it)."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = lock(invoice_id, merchant=merchant, mode=mode)
        if is_overdue(invoice, now):
            raise Conflict("The invoice has expired.", code="invoice_expired")
        if invoice.amount_paid_minor > 0 or invoice.status not in (
            InvoiceStatus.DRAFT,
            InvoiceStatus.PENDING,
        ):
            raise Conflict(
                f"An invoice that is {invoice.status} cannot be voided.", code="invoice_not_voidable"
            )
        events: list[str] = []
        set_status(invoice, InvoiceStatus.VOID, events)
        invoice.voided_at = now
        invoice.save(update_fields=["status", "voided_at", "updated_at"])
        for event in events:
            emit(invoice, event, payments=payments)
    return with_relations(Invoice.objects.filter(pk=invoice.pk)).get()


# ---- the start of payment collection -------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentTarget:
    """What a new payment is for: the locked invoice, the installment and what that installment still owes."""

    invoice: Invoice
    installment: Installment
    amount_minor: int


def invoice_check_installment_payable(
    *, invoice: Invoice, installment_number: int | None = None
) -> Installment:
    """The installment a payment may be initiated for: `installment_number`, or by default the lowest-numbered
    installment not fully paid. Only that lowest unpaid one is payable: any other gives 409
    `installment_out_of_order`; a number the invoice does not have gives 400 (`param` "installment"); a fully
    paid invoice gives 409 `invoice_already_paid`. Call it with the invoice locked (as
    `invoice_mark_payment_initiated` does) for a decision that stays true until commit."""
    installments = list(Installment.objects.filter(invoice=invoice).order_by("number"))
    next_due = next((inst for inst in installments if inst.status != InstallmentStatus.PAID), None)
    if installment_number is not None:
        if (
            isinstance(installment_number, bool)
            or not isinstance(installment_number, int)
            or not (1 <= installment_number <= len(installments))
        ):
            raise ValidationError(
                f"installment must be between 1 and {len(installments)}.",
                code="installment_invalid",
                param="installment",
            )
    if next_due is None:
        raise Conflict("The invoice is fully paid.", code="invoice_already_paid")
    if installment_number is not None and installment_number != next_due.number:
        raise Conflict(
            f"Installment {next_due.number} must be paid before installment {installment_number}.",
            code="installment_out_of_order",
            param="installment",
        )
    return next_due


def invoice_mark_payment_initiated(
    *,
    invoice_id: str,
    installment_number: int | None = None,
    nowait: bool = False,
    now: datetime | None = None,
) -> PaymentTarget:
    """Call inside the payments work's transaction before recording a payment attempt.

    Locks the invoice row (`nowait=True`: a concurrent holder gives 409 `payment_in_progress`), checks it can take
    a payment now (draft, pending or partially_paid and not past its lapse time: otherwise 409 `invoice_expired`,
    `invoice_already_paid`, `invoice_not_payable`), checks the installment with
    `invoice_check_installment_payable`, and on the first call sets `payment_initiated_at` and moves
    draft -> pending (records `invoice.pending`); from then on amounts, items, currency, installments and gateway
    are immutable. Calling again (a retry, the next installment) changes nothing on the invoice.
    Tenant scoping is the caller's job (it resolved the invoice through `invoices.selectors.invoice_get`).

    An overdue invoice is moved to `expired` in its own transaction first when no outer transaction is open; the
    payments work always calls this inside its own transaction, which the 409 rolls back (the expiry job records
    the expiry then). The events recorded here carry an empty `payments` list: an invoice has no payment before
    its first initiation, and the expiry is only kept when no payments caller is involved.
    """
    now = now or timezone.now()
    with transaction.atomic():
        invoice = lock(invoice_id, nowait=nowait)
        if is_overdue(invoice, now):
            expire_locked(invoice, now, payments=[])  # kept when we own the transaction (see above)
        else:
            return _initiate_locked(invoice, installment_number, now)
    raise Conflict("The invoice has expired.", code="invoice_expired")


def _initiate_locked(invoice: Invoice, installment_number: int | None, now: datetime) -> PaymentTarget:
    if invoice.status == InvoiceStatus.PAID:
        raise Conflict("The invoice is fully paid.", code="invoice_already_paid")
    if invoice.status == InvoiceStatus.EXPIRED:
        raise Conflict("The invoice has expired.", code="invoice_expired")
    if invoice.status not in OPEN_STATUSES:
        raise Conflict(f"An invoice that is {invoice.status} cannot be paid.", code="invoice_not_payable")
    installment = invoice_check_installment_payable(invoice=invoice, installment_number=installment_number)
    if invoice.payment_initiated_at is None:
        events: list[str] = []
        invoice.payment_initiated_at = now
        set_status(invoice, InvoiceStatus.PENDING, events)
        invoice.save(update_fields=["payment_initiated_at", "status", "updated_at"])
        for event in events:
            emit(invoice, event, payments=[])  # no payment exists before the first initiation
    return PaymentTarget(invoice=invoice, installment=installment, amount_minor=installment.amount_due_minor)
