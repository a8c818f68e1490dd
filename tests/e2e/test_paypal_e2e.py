"""End to end through the API against the fake PayPal: a USD invoice in 2 installments on a PayPal account created
through the API, both installments paid through PayPal's approval page (the fake), the signed notifications
CHECKOUT.ORDER.APPROVED (PayTrust captures) and PAYMENT.CAPTURE.COMPLETED, part of one refunded through the API and
PayPal's PAYMENT.CAPTURE.REFUNDED; the ledger is balanced and `verify_ledger` passes."""

# ruff: noqa: F811
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.gateways.paypal_support import (  # noqa: F401 - fixtures
    PAYPAL_CLIENT_ID,
    PAYPAL_CLIENT_SECRET,
    PAYPAL_WEBHOOK_ID,
    deliver,
    paypal_fake,
)
from tests.webhooks.inbound_support import merchant, process_all  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_usd_invoice_in_two_installments_paid_through_paypal_and_partly_refunded(api, paypal_fake):
    account = api.post(
        "/v1/gateway-accounts",
        {
            "gateway": "paypal",
            "credentials": {
                "client_id": PAYPAL_CLIENT_ID,
                "client_secret": PAYPAL_CLIENT_SECRET,
                "webhook_id": PAYPAL_WEBHOOK_ID,
            },
            "currencies": ["USD"],
        },
        format="json",
    )
    assert account.status_code == 201, account.content
    account = account.json()
    assert account["webhook_url"].endswith(f"/v1/webhooks/paypal/{account['id']}")
    assert PAYPAL_CLIENT_SECRET not in str(account)  # write-only (a 4-character hint at most)

    invoice = api.post(
        "/v1/invoices",
        {
            "currency": "USD",
            "gateway": "paypal",
            "customer": {"name": "Ana", "email": "ana@example.com"},
            "line_items": [{"name": "Course", "quantity": 1, "unit_price": "199.99", "tax_rate": "0.1"}],
            "installments": {"count": 2},
        },
        format="json",
    )
    assert invoice.status_code == 201, invoice.content
    invoice = invoice.json()
    assert invoice["total"] == "219.99"

    payments = []
    for _installment in (1, 2):
        payment = api.post(f"/v1/invoices/{invoice['id']}/payments", {}, format="json").json()
        order_id = payment["gateway_reference"]
        assert payment["payment_url"] == f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"
        paypal_fake.approve(order_id)  # the customer approves on PayPal's page
        assert deliver(paypal_fake, account["id"], paypal_fake.approved_event(order_id)).status_code == 200
        process_all()
        capture_id = paypal_fake.only_capture(order_id)["id"]
        assert deliver(paypal_fake, account["id"], paypal_fake.capture_event(capture_id)).status_code == 200
        process_all()
        payment = api.get(f"/v1/payments/{payment['id']}").json()
        assert payment["status"] == "succeeded", payment
        payments.append(payment)
    assert [p["amount"] for p in payments] == ["109.99", "110.00"]
    assert len(paypal_fake.captures) == 2

    paid = api.get(f"/v1/invoices/{invoice['id']}").json()
    assert (paid["status"], paid["amount_paid"], paid["amount_due"]) == ("paid", "219.99", "0.00")

    refund = api.post(f"/v1/payments/{payments[0]['id']}/refunds", {"amount": "40.00"}, format="json")
    assert refund.status_code in (200, 201), refund.content
    refund = refund.json()
    assert refund["status"] == "succeeded"
    (paypal_refund_id,) = paypal_fake.refunds
    assert deliver(paypal_fake, account["id"], paypal_fake.refund_event(paypal_refund_id)).status_code == 200
    assert process_all()[-1] == "processed"
    first = api.get(f"/v1/payments/{payments[0]['id']}").json()
    assert (first["status"], first["amount_refunded"]) == ("partially_refunded", "40.00")
    assert api.get(f"/v1/invoices/{invoice['id']}").json()["amount_refunded"] == "40.00"

    (usd,) = api.get("/v1/balance").json()["currencies"]
    # 219.99 collected - 20.00 tax held - 40.00 refunded; nothing held, nothing in flight.
    assert (usd["currency"], usd["available"], usd["tax_held"]) == ("USD", "159.99", "20.00")
    assert (usd["pending"], usd["refunds_in_flight"]) == ("0.00", "0.00")

    out = io.StringIO()
    call_command("verify_ledger", stdout=out)  # raises SystemExit (non-zero) on any break
    assert out.getvalue().startswith("ledger OK")
