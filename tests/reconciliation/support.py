"""Helpers of the reconciliation tests: a day of sandbox payments made through the real services (invoice
creation, initiation, the sandbox checkout and its signed webhook processed by the inbound pipeline), refunds
through `refund_create`, ledger balances."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from gateways.models import GatewayAccount, SandboxCheckoutSession
from gateways.sandbox import services as sandbox
from invoices.calc import CustomerIn, LineItemIn
from invoices.services import invoice_create
from ledger.models import Entry
from payments.models import Payment
from payments.services import payment_initiate, refund_create
from tests.webhooks.inbound_support import process_all
from webhooks.inbound.services import sandbox_notification_receive


def sandbox_account(merchant) -> GatewayAccount:
    return GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="sandbox", enabled=True)


def initiated(merchant, amount: str, currency: str = "IDR") -> Payment:
    """An invoice of one line `amount` for a new customer each time (200 payments by one e-mail in an hour would
    rightly be blocked by the risk check's velocity rule), and its payment initiated at the sandbox."""
    invoice = invoice_create(
        merchant=merchant,
        mode="test",
        currency=currency,
        gateway=sandbox_account(merchant).id,
        line_items=[LineItemIn("Widget", 1, amount, "0")],
        customer=CustomerIn("Budi", f"buyer-{uuid.uuid4().hex[:12]}@example.com", "+628123456789"),
        expires_at=timezone.now() + timedelta(hours=24),
    )
    return payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment


def pay_at_sandbox(payment: Payment) -> None:
    """The customer pays on the sandbox checkout; its webhook is stored (processed by `process_all`)."""
    session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
    outcome = sandbox.sandbox_checkout_submit(
        token=session.token, nonce=session.form_nonce, action="pay", receiver=sandbox_notification_receive
    )
    assert outcome.delivered, outcome.delivery_error


def paid_payments(merchant, amounts: list[int], currency: str = "IDR") -> list[Payment]:
    """Payments of these amounts (minor units), paid at the sandbox and applied by the inbound pipeline."""
    payments = [initiated(merchant, str(amount), currency) for amount in amounts]
    for payment in payments:
        pay_at_sandbox(payment)
    process_all()
    ids = [p.pk for p in payments]
    paid = {p.pk: p for p in Payment.objects.filter(pk__in=ids)}
    assert all(p.status == "succeeded" for p in paid.values())
    return [paid[pk] for pk in ids]


def refund(payment: Payment, amount_minor: int):
    result = refund_create(
        merchant=payment.merchant,
        mode="test",
        payment_id=payment.pk,
        amount_minor=amount_minor,
        reason="test",
    )
    assert result.status == "succeeded", result.status
    return result


def balance(merchant, code: str, currency: str = "IDR") -> int:
    """The account's signed balance (debit positive)."""
    total = Entry.objects.filter(
        account__merchant=merchant, account__mode="test", account__currency=currency, account__code=code
    ).aggregate(total=Sum("amount_minor"))["total"]
    return int(total or 0)


def today():
    return timezone.now().date()
