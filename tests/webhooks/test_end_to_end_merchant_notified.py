"""The whole loop in test mode: invoice via the API -> sandbox payment initiated -> the customer presses "pay" on
the hosted checkout page -> signed gateway webhook through the inbound pipeline -> processing job -> invoice paid
-> `invoice.paid` delivered to the merchant's endpoint (a real local HTTP receiver) by the outbound job, verified
with the `standardwebhooks` library and the endpoint's secret."""

# ruff: noqa: F811

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateways.models import SandboxCheckoutSession
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import clean_jobs, initiate, merchant, run_inbound_worker  # noqa: F401
from webhooks.inbound.models import InboundNotification
from webhooks.outbound.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


def _pay_on_checkout_page(payment: dict) -> None:
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    path = "/" + payment["payment_url"].split("://", 1)[1].split("/", 1)[1]
    browser = Client()
    page = browser.get(path)
    assert page.status_code == 200
    assert browser.post(path, {"nonce": session.form_nonce, "action": "pay"}).status_code == 200


def test_sandbox_payment_delivers_a_verifiable_invoice_paid_event(
    api, merchant, clean_jobs, webhook_receiver, receiver_endpoint, run_outbound_jobs
):
    invoice = make_invoice(merchant, amount="150000")
    payment = initiate(api, invoice.id)

    _pay_on_checkout_page(payment)
    run_inbound_worker(until=lambda: not InboundNotification.objects.exclude(status="processed").exists())
    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "paid"

    def paid_delivered() -> bool:
        return Delivery.objects.filter(event__type="invoice.paid", status="succeeded").exists()

    run_outbound_jobs(until=paid_delivered)

    received = {json.loads(r.body)["type"]: r for r in webhook_receiver.requests}
    assert {"invoice.pending", "payment.succeeded", "invoice.paid"} <= set(received)
    paid = received["invoice.paid"]
    body = Webhook(receiver_endpoint.secret).verify(paid.body, paid.headers)
    assert body["data"]["id"] == invoice.id
    assert (body["data"]["status"], body["data"]["amount_paid"], body["data"]["amount_due"]) == (
        "paid",
        "150000",
        "0",
    )
    assert paid.headers["webhook-id"] == body["id"]

    # The verification really checks: a tampered body, or a stale timestamp, is refused by the library.
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver_endpoint.secret).verify(paid.body.replace(b'"paid"', b'"void"', 1), paid.headers)
    stale = dict(paid.headers, **{"webhook-timestamp": str(int(time.time()) - 3600)})
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver_endpoint.secret).verify(paid.body, stale)
