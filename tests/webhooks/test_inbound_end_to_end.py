"""End to end in test mode: API initiation -> sandbox checkout page action -> signed webhook through the inbound
pipeline (webhooks.inbound.sandbox_checkout -> sandbox_notification_receive) -> job run by a real in-process procrastinate worker -> invoice state."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

import pytest
from django.test import Client

from gateways.models import SandboxCheckoutSession
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import clean_jobs, initiate, merchant, run_inbound_worker  # noqa: F401
from webhooks.inbound.models import InboundNotification

pytestmark = pytest.mark.django_db(transaction=True)


def _checkout(payment: dict, action: str, amount: str | None = None) -> None:
    """What the customer does on the hosted sandbox page: load it, press a button."""
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    path = payment["payment_url"].split("://", 1)[1].split("/", 1)[1]
    browser = Client()
    page = browser.get(f"/{path}")
    assert page.status_code == 200 and session.form_nonce in page.content.decode()
    form = {"nonce": session.form_nonce, "action": action}
    if amount is not None:
        form["amount"] = amount
    done = browser.post(f"/{path}", form)
    assert done.status_code == 200, done.content


def _processed_all() -> bool:
    return not InboundNotification.objects.exclude(status="processed").exists()


def test_sandbox_payment_pays_the_invoice_through_the_inbound_pipeline(api, merchant, clean_jobs):
    invoice = make_invoice(merchant, amount="150000")
    payment = initiate(api, invoice.id)

    _checkout(payment, "pay")
    event = InboundNotification.objects.get()
    assert event.gateway == "sandbox" and event.status == "received"
    run_inbound_worker(until=_processed_all)

    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "succeeded"
    body = api.get(f"/v1/invoices/{invoice.id}").json()
    assert (body["status"], body["amount_paid"], body["amount_due"]) == ("paid", "150000", "0")
    assert body["payments"][0]["status"] == "succeeded"


def test_three_installments_are_paid_in_order(api, merchant, clean_jobs):
    invoice = make_invoice(merchant, amount="300000", installments=3)

    first = initiate(api, invoice.id)
    assert (first["installment"], first["amount"]) == (1, "100000")
    _checkout(first, "pay")
    run_inbound_worker(until=_processed_all)

    refused = api.post(f"/v1/invoices/{invoice.id}/payments", {"installment": 3}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "installment_out_of_order"

    second = initiate(api, invoice.id, installment=2)
    _checkout(second, "pay")
    run_inbound_worker(until=_processed_all)
    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "partially_paid"

    third = initiate(api, invoice.id, installment=3)
    _checkout(third, "pay")
    run_inbound_worker(until=_processed_all)

    body = api.get(f"/v1/invoices/{invoice.id}").json()
    assert body["status"] == "paid"
    assert [i["status"] for i in body["installments"]] == ["paid", "paid", "paid"]
    assert [p["installment"] for p in body["payments"]] == [1, 2, 3]


def test_overpayment_shows_on_the_overpayment_endpoint(api, merchant, clean_jobs):
    invoice = make_invoice(merchant, amount="150000")
    payment = initiate(api, invoice.id)

    _checkout(payment, "overpay", amount="200000")
    run_inbound_worker(until=_processed_all)

    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "paid"
    over = api.get(f"/v1/invoices/{invoice.id}/overpayment").json()
    assert over["currency"] == "IDR" and over["amount"] == "50000"
    assert [(p["payment"], p["amount"]) for p in over["payments"]] == [(payment["id"], "50000")]
    assert api.get(f"/v1/payments/{payment['id']}").json()["amount_received"] == "200000"


def test_partial_payment_then_a_new_payment_for_the_rest(api, merchant, clean_jobs):
    invoice = make_invoice(merchant, amount="150000")
    first = initiate(api, invoice.id)

    _checkout(first, "pay_partial", amount="100000")
    run_inbound_worker(until=_processed_all)
    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "partially_paid"

    rest = initiate(api, invoice.id)
    assert rest["id"] != first["id"] and rest["amount"] == "50000"
    _checkout(rest, "pay")
    run_inbound_worker(until=_processed_all)
    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "paid"


def test_failed_checkout_fails_the_payment_and_keeps_the_invoice_payable(api, merchant, clean_jobs):
    invoice = make_invoice(merchant, amount="150000")
    payment = initiate(api, invoice.id)

    _checkout(payment, "fail")
    run_inbound_worker(until=_processed_all)

    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "failed"
    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "pending"
    assert api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").status_code == 201
