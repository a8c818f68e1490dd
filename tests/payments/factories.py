"""Payment test helpers: invoices made through the real invoices service."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from gateways.models import GatewayAccount
from invoices.calc import CustomerIn, InstallmentsIn, LineItemIn
from invoices.services import invoice_create


def sandbox_account(merchant, mode: str = "test") -> GatewayAccount:
    return GatewayAccount.objects.get(merchant=merchant, mode=mode, gateway="sandbox", enabled=True)


def make_invoice(
    merchant,
    *,
    gateway: str | None = None,
    mode: str = "test",
    currency: str = "IDR",
    amount: str = "150000",
    installments: int | None = None,
    installment_amounts: list[str] | None = None,
    expires_in: timedelta = timedelta(hours=24),
    now=None,
    customer_email: str = "budi@example.com",
):
    """A draft invoice of one line `amount` (no tax, no fee unless the account has one). Tests that pay many invoices
    in an hour give each its own `customer_email`: the risk check's velocity rule counts payments per e-mail."""
    now = now or timezone.now()
    plan = None
    if installments:
        plan = InstallmentsIn(count=installments, amounts=installment_amounts)
    return invoice_create(
        merchant=merchant,
        mode=mode,
        currency=currency,
        gateway=gateway or sandbox_account(merchant, mode).id,
        line_items=[LineItemIn("Widget", 1, amount, "0")],
        installments=plan,
        customer=CustomerIn("Budi", customer_email, "+628123456789"),
        expires_at=now + expires_in,
        now=now,
    )
