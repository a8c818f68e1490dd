"""The API representation of invoices and installments (also the `data` of outbound invoice events).

Works from rows already in memory (prefetched by the selectors, or just written by a service), so rendering
never queries per invoice. Amounts are decimal strings with the currency's decimals (`paytrust.money`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from invoices.models import Installment, Invoice, LineItem
from invoices.states import effective_status
from paytrust.money import format_amount, format_rate, to_minor


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def line_item_representation(line: LineItem, currency: str) -> dict:
    return {
        "name": line.name,
        "quantity": line.quantity,
        "unit_price": format_amount(line.unit_price_minor, currency),
        "tax_rate": format_rate(line.tax_rate),
        "subtotal": format_amount(line.subtotal_minor, currency),
        "tax": format_amount(line.tax_minor, currency),
    }


def installment_representation(installment: Installment, currency: str) -> dict:
    return {
        "number": installment.number,
        "amount": format_amount(installment.amount_minor, currency),
        "tax_share": format_amount(installment.tax_share_minor, currency),
        "fee_share": format_amount(installment.fee_share_minor, currency),
        "due_date": _date(installment.due_date),
        "amount_paid": format_amount(installment.amount_paid_minor, currency),
        "amount_due": format_amount(installment.amount_due_minor, currency),
        "status": installment.status,
        "paid_at": rfc3339(installment.paid_at),
    }


def _refunded_minor(payments: list[dict], currency: str) -> int:
    """What the invoice's payments had refunded (their succeeded refunds, chargebacks included): the sum of the
    payment objects' `amount_refunded` (one currency: an invoice's payments are all in the invoice's)."""
    return sum(to_minor(p.get("amount_refunded") or "0", currency) for p in payments)


def invoice_representation(
    invoice: Invoice,
    *,
    line_items: list[LineItem],
    installments: list[Installment],
    supplementary_ids: list[str],
    payments: list[dict],
    now: datetime,
) -> dict:
    cur = invoice.currency
    return {
        "id": invoice.id,
        "object": "invoice",
        "mode": invoice.mode,
        "status": effective_status(invoice, now),
        "currency": cur,
        "gateway": invoice.gateway,
        "gateway_account": invoice.gateway_account_id,
        "external_id": invoice.external_id,
        "description": invoice.description,
        "customer": {
            "name": invoice.customer_name or None,
            "email": invoice.customer_email or None,
            "phone": invoice.customer_phone or None,
        },
        "subtotal": format_amount(invoice.subtotal_minor, cur),
        "tax_total": format_amount(invoice.tax_total_minor, cur),
        "service_fee": format_amount(invoice.service_fee_minor, cur),
        "total": format_amount(invoice.total_minor, cur),
        "amount_paid": format_amount(invoice.amount_paid_minor, cur),
        "amount_due": format_amount(invoice.amount_due_minor, cur),
        "overpaid": format_amount(invoice.overpaid_minor, cur),
        "amount_refunded": format_amount(_refunded_minor(payments, cur), cur),
        "line_items": [line_item_representation(line, cur) for line in line_items],
        "installments": [installment_representation(inst, cur) for inst in installments],
        "expires_at": rfc3339(invoice.expires_at),
        "payment_initiated_at": rfc3339(invoice.payment_initiated_at),
        "paid_at": rfc3339(invoice.paid_at),
        "payments": payments,
        "metadata": invoice.metadata,
        "parent_invoice": invoice.parent_invoice_id,
        "supplementary_invoices": supplementary_ids,
        "created_at": rfc3339(invoice.created_at),
        "updated_at": rfc3339(invoice.updated_at),
    }
