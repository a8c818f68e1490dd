"""Editing an invoice: metadata in any status; everything else only while it is a draft no payment was initiated
for (docs/adr/0022-invoice-immutability.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from invoices import calc
from invoices.calc import CustomerIn, InstallmentPlan, InstallmentsIn, LineItemIn
from invoices.models import Installment, Invoice, InvoiceStatus, LineItem
from invoices.selectors import with_relations
from invoices.services._inputs import (
    apply_totals,
    compute,
    external_id_conflict,
    resolve_account,
    validate_customer,
    validate_description,
    validate_expiry,
    validate_external_id,
)
from invoices.services._support import UNSET, Unset, lock
from invoices.services.create import write_children
from invoices.states import is_overdue
from merchants.models import Merchant
from paytrust import money
from paytrust.errors import Conflict


def invoice_update(
    *,
    merchant: Merchant,
    mode: str,
    invoice_id: str,
    currency: str | Unset = UNSET,
    gateway: str | Unset = UNSET,
    line_items: Sequence[LineItemIn] | Unset = UNSET,
    installments: InstallmentsIn | None | Unset = UNSET,
    expires_at: datetime | None | Unset = UNSET,
    customer: CustomerIn | None | Unset = UNSET,
    external_id: str | None | Unset = UNSET,
    description: str | Unset = UNSET,
    metadata: dict | Unset = UNSET,
    now: datetime | None = None,
) -> Invoice:
    """Edit an invoice. Only the arguments passed (not UNSET) change; amounts are recomputed.

    - `metadata` can be changed in any status.
    - Everything else only while the invoice is a draft: once `payment_initiated_at` is set any such change
      gives 409 `invoice_immutable`; an expired or void draft gives 409 `invoice_not_editable`. Nothing is
      written in either case.
    - Changing `currency` re-reads the stored prices and custom installment amounts in the new currency (400
      with `param` if they do not fit it); `customer` is replaced as a whole; `installments=None` removes a plan;
      `expires_at=None` resets the default (now + 24 h).
    """
    now = now or timezone.now()
    arguments = {
        "currency": currency,
        "gateway": gateway,
        "line_items": line_items,
        "installments": installments,
        "expires_at": expires_at,
        "customer": customer,
        "external_id": external_id,
        "description": description,
        "metadata": metadata,
    }
    changes = {name: value for name, value in arguments.items() if value is not UNSET}
    with transaction.atomic():
        invoice = lock(invoice_id, merchant=merchant, mode=mode)
        domain = [name for name in changes if name != "metadata"]
        if domain:
            _check_editable(invoice, domain[0], now)
            _recompute_draft(invoice, changes, now=now)
        if "metadata" in changes:
            invoice.metadata = changes["metadata"] or {}
        if changes:
            _save(invoice)
    return with_relations(Invoice.objects.filter(pk=invoice.pk)).get()


def _check_editable(invoice: Invoice, param: str, now: datetime) -> None:
    if invoice.payment_initiated_at is not None:
        raise Conflict(
            "A payment has been initiated for this invoice: its amounts, items, currency, installments "
            "and gateway can no longer change. Create a supplementary invoice instead.",
            code="invoice_immutable",
            param=param,
        )
    if invoice.status != InvoiceStatus.DRAFT or is_overdue(invoice, now):
        status = "expired" if is_overdue(invoice, now) else invoice.status
        raise Conflict(
            f"Only draft invoices can be edited; this one is {status}.", code="invoice_not_editable"
        )


def _save(invoice: Invoice) -> None:
    try:
        with transaction.atomic():
            invoice.save()
    except IntegrityError as exc:
        if external_id_conflict(exc):
            raise Conflict(
                "An invoice with this external_id already exists.",
                code="external_id_duplicate",
                param="external_id",
            )
        raise


def _recompute_draft(invoice: Invoice, changes: dict, *, now: datetime) -> None:
    old_currency = invoice.currency
    new_currency = money.get_currency(changes.get("currency", old_currency)).code
    gateway_ref = changes.get("gateway", invoice.gateway_account_id)
    account = resolve_account(
        merchant=invoice.merchant, mode=invoice.mode, gateway=gateway_ref, currency=new_currency
    )
    if "line_items" in changes:
        line_items = changes["line_items"]
    else:  # keep the stored lines; re-read their prices in the (possibly new) currency
        line_items = [
            LineItemIn(
                name=line.name,
                quantity=line.quantity,
                unit_price=money.format_amount(line.unit_price_minor, old_currency),
                tax_rate=line.tax_rate,
            )
            for line in LineItem.objects.filter(invoice=invoice).order_by("position")
        ]
    plan = _plan_after(invoice, changes, old_currency=old_currency, new_currency=new_currency)
    expires_at = (
        validate_expiry(changes["expires_at"], now) if "expires_at" in changes else invoice.expires_at
    )
    computed = compute(
        account=account, currency=new_currency, line_items=line_items, plan=plan, expires_at=expires_at
    )
    if "customer" in changes:
        customer = validate_customer(changes["customer"])
        invoice.customer_name = customer.name or ""
        invoice.customer_email = customer.email or ""
        invoice.customer_phone = customer.phone or ""
    if "external_id" in changes:
        invoice.external_id = validate_external_id(changes["external_id"])
    if "description" in changes:
        invoice.description = validate_description(changes["description"])

    invoice.currency = new_currency
    invoice.gateway_account = account
    invoice.gateway = account.gateway
    invoice.expires_at = expires_at
    invoice.lapses_at = expires_at
    apply_totals(invoice, computed)
    LineItem.objects.filter(invoice=invoice).delete()
    Installment.objects.filter(invoice=invoice).delete()
    write_children(invoice, computed)


def _plan_after(
    invoice: Invoice, changes: dict, *, old_currency: str, new_currency: str
) -> InstallmentPlan | None:
    """The installment plan after the edit: the new one, or the stored one (custom amounts re-read in the new
    currency)."""
    if "installments" in changes:
        return calc.parse_installment_plan(changes["installments"], new_currency)
    plan = InstallmentPlan.from_json(invoice.installment_plan)
    if plan is not None and plan.amounts is not None and new_currency != old_currency:
        plan = calc.parse_installment_plan(
            InstallmentsIn(
                count=plan.count,
                amounts=[money.format_amount(a, old_currency) for a in plan.amounts],
                due_dates=plan.due_dates,
            ),
            new_currency,
        )
    return plan
