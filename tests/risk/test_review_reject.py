"""Rejecting a flagged payment acts on what the gateway says the payment is when it is closed: a payer who paid a
moment before the reject is refunded (found by an attacker/finance review: it used to report `expired`)."""

import pytest

from payments.models import Payment, Refund
from payments.services.review import payment_review_reject
from tests.gateways.stripe_support import stripe_account, stripe_fake  # noqa: F401
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


def test_a_flagged_payment_paid_just_before_the_reject_is_refunded(
    api,
    merchant,
    stripe_account,  # noqa: F811
    stripe_fake,  # noqa: F811
):
    assert (
        api.patch("/v1/risk-settings", {"amount_thresholds": {"USD": "1.00"}}, format="json").status_code
        == 200
    )
    invoice = make_invoice(merchant, gateway="stripe", currency="USD", amount="20.00")
    created = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")
    assert created.status_code == 201, created.content
    payment = Payment.objects.get(pk=created.json()["id"])
    assert payment.review_status == "pending"
    stripe_fake.pay(payment.gateway_reference)  # paid at Stripe; its webhook not processed yet

    outcome = payment_review_reject(payment_id=payment.pk, reviewer="user:finance")

    payment.refresh_from_db()
    assert outcome.action == "refunded", outcome
    assert payment.review_status == "rejected"
    refund = Refund.objects.get(payment=payment)
    assert refund.amount_minor == 2000 and refund.status == "succeeded"
    assert payment.status == "refunded"
