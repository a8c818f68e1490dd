"""Invoice test helpers. Invoices are created through the real service (totals, installments, events)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from gateways.models import GatewayAccount
from invoices.calc import CustomerIn, InstallmentsIn, LineItemIn
from invoices.services import invoice_create
from tests.factories import GatewayAccountFactory, GatewayFeeFactory, MerchantFactory


def sandbox_account(merchant, mode: str = "test") -> GatewayAccount:
    account = GatewayAccount.objects.filter(
        merchant=merchant, mode=mode, gateway="sandbox", enabled=True
    ).first()
    return account or GatewayAccountFactory(merchant=merchant, mode=mode, gateway="sandbox")


def account_with_fee(merchant, *, gateway="xendit", mode="test", currency="IDR", percent="0", fixed_minor=0):
    """An enabled account for `gateway` with a fee for `currency` (the test-mode sandbox already exists)."""
    account = GatewayAccount.objects.filter(
        merchant=merchant, mode=mode, gateway=gateway, enabled=True
    ).first()
    if account is None:
        account = GatewayAccountFactory(merchant=merchant, mode=mode, gateway=gateway)
    GatewayFeeFactory(account=account, currency=currency, percent=percent, fixed_minor=fixed_minor)
    return account


def make_invoice(
    merchant=None,
    *,
    mode="test",
    currency="IDR",
    gateway=None,
    lines=(("Widget", 1, "100000", "0"),),
    installments: InstallmentsIn | None = None,
    expires_in=timedelta(hours=24),
    external_id=None,
    customer=None,
    now=None,
    **kwargs,
):
    merchant = merchant or MerchantFactory()
    if gateway is None:
        gateway = sandbox_account(merchant, mode).id
    return invoice_create(
        merchant=merchant,
        mode=mode,
        currency=currency,
        gateway=gateway,
        line_items=[LineItemIn(*line) for line in lines],
        installments=installments,
        expires_at=(now or timezone.now()) + expires_in,
        external_id=external_id,
        customer=customer or CustomerIn("Budi", "budi@example.com", "+628123"),
        now=now,
        **kwargs,
    )
