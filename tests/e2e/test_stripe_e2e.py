"""End to end through the API against the fake Stripe: a USD invoice in 2 installments, both paid through Checkout
Sessions and signed Stripe events, part of one refunded; the ledger balances and `verify_ledger` passes."""

# Fixtures are imported from tests/gateways/stripe_support.py.
# ruff: noqa: F811

import io

import pytest
from django.core.management import call_command

from gateways.services import merchant_onboard
from tests.fakes.stripe import stripe_event
from tests.gateways.stripe_support import post_stripe, stripe_account, stripe_fake  # noqa: F401
from tests.webhooks.inbound_support import process_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant(db):
    return merchant_onboard(name="Acme")


def test_usd_invoice_in_two_installments_paid_through_stripe_and_part_refunded(
    api, stripe_account, stripe_fake
):
    created = api.post(
        "/v1/invoices",
        {
            "currency": "USD",
            "gateway": "stripe",
            "customer": {"name": "Budi", "email": "budi@example.com"},
            "line_items": [{"name": "Consulting", "quantity": 1, "unit_price": "100.00", "tax_rate": "0"}],
            "installments": {"count": 2},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    invoice = created.json()

    payments = []
    for number in (1, 2):
        payment = api.post(f"/v1/invoices/{invoice['id']}/payments", {"installment": number}, format="json")
        assert payment.status_code == 201, payment.content
        payment = payment.json()
        assert (payment["gateway"], payment["amount"]) == ("stripe", "50.00")
        session = stripe_fake.pay(payment["gateway_reference"])  # the customer pays on Stripe's page
        body = stripe_event("checkout.session.completed", session)
        assert post_stripe(stripe_account.id, body).status_code == 200
        assert process_all()[-1] == "processed"
        payments.append(payment)

    paid = api.get(f"/v1/invoices/{invoice['id']}").json()
    assert (paid["status"], paid["amount_paid"], paid["amount_due"]) == ("paid", "100.00", "0.00")

    refund = api.post(f"/v1/payments/{payments[0]['id']}/refunds", {"amount": "20.00"}, format="json")
    assert refund.status_code == 201, refund.content
    assert refund.json()["status"] == "succeeded"
    stripe_refund = next(iter(stripe_fake.refunds.values()))
    assert post_stripe(stripe_account.id, stripe_event("refund.updated", stripe_refund)).status_code == 200
    assert process_all()[-1] == "processed"

    first = api.get(f"/v1/payments/{payments[0]['id']}").json()
    assert (first["status"], first["amount_refunded"]) == ("partially_refunded", "20.00")
    assert api.get(f"/v1/invoices/{invoice['id']}").json()["amount_refunded"] == "20.00"

    out = io.StringIO()
    try:
        call_command("verify_ledger", stdout=out, stderr=io.StringIO())
    except SystemExit as exit_:  # non-zero on any broken invariant
        pytest.fail(f"verify_ledger exited {exit_.code}: {out.getvalue()}")
    balance = api.get("/v1/balance").json()
    assert "USD" in str(balance), balance  # the balance shows the USD movements
