"""Helpers of the refund tests: a sandbox payment paid through the sandbox checkout (its signed notification
processed by the real inbound pipeline), ledger balances, the refund events."""

from __future__ import annotations

from django.db.models import Sum

from gateways.models import SandboxCheckoutSession
from gateways.sandbox import services as sandbox
from ledger.models import Entry, Movement
from payments.models import Payment
from payments.services import payment_initiate
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import process_all
from webhooks.inbound.services import sandbox_notification_receive
from webhooks.outbound.models import Event


def paid_sandbox_payment(merchant, *, amount: str = "150000", currency: str = "IDR") -> Payment:
    invoice = make_invoice(merchant, amount=amount, currency=currency)
    payment = payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment
    session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
    outcome = sandbox.sandbox_checkout_submit(
        token=session.token, nonce=session.form_nonce, action="pay", receiver=sandbox_notification_receive
    )
    assert outcome.delivered, outcome.delivery_error
    process_all()
    payment.refresh_from_db()
    assert payment.status == "succeeded", payment.status
    return payment


def balance(merchant, code: str, currency: str = "IDR") -> int:
    """The account's balance, credit-normal accounts as a positive number when in credit."""
    total = Entry.objects.filter(
        account__merchant=merchant, account__mode="test", account__currency=currency, account__code=code
    ).aggregate(total=Sum("amount_minor"))["total"]
    return -(total or 0)


def refund_movements(refund_id: str) -> list[str]:
    return sorted(
        Movement.objects.filter(source_type="refund", source_id=refund_id).values_list("type", flat=True)
    )


def refund_events(type_: str | None = None) -> list[dict]:
    qs = Event.objects.filter(type__startswith="refund.").order_by("created_at", "id")
    if type_:
        qs = qs.filter(type=type_)
    return [event.data for event in qs]
