"""A void invoice never hands out or keeps a live checkout (issue 11 point 1).

The interleaving, with real threads and connections: the initiation commits its payment `initiating` and its
create call is on the wire (held at the fake Xendit before Xendit acts on it); the invoice is voided (its open
payments closed, a reconcile job queued); the job asks Xendit, which does not know the invoice yet. Then the
create goes through. Before: the job failed the payment for good, phase 3 stored the URL anyway and answered 201
with a working checkout that stayed open 24 h. Now: "not found" for a payment still being created is not final,
and phase 3 refuses to hand out the URL, expires the new checkout at Xendit and answers 409 `payment_closed`.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from invoices.models import Invoice
from payments.models import Payment
from payments.services import payment_reconcile, payments_to_reconcile
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def created_url_absent(body: str, fake) -> bool:
    urls = [invoice["invoice_url"] for invoice in fake.invoices.values()]
    return bool(urls) and not any(url in body for url in urls)


def test_void_while_the_create_is_on_the_wire_never_hands_out_a_live_checkout(
    api_key, merchant, xendit_account, xendit_fake, no_jobs
):
    invoice = make_invoice(merchant, gateway="xendit")
    xendit_fake.create_gate, xendit_fake.create_arrived = threading.Event(), threading.Event()
    answers = {}

    def initiate():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
        answers["initiation"] = client.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")
        connection.close()

    thread = threading.Thread(target=initiate)
    thread.start()
    try:
        assert xendit_fake.create_arrived.wait(20), "the create call never reached the fake Xendit"
        payment = Payment.objects.get(invoice_id=invoice.id)
        assert payment.status == "initiating"

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
        assert client.post(f"/v1/invoices/{invoice.id}/void", {}, format="json").status_code == 200

        payment_reconcile(payment_id=payment.id)  # the job the void queued: Xendit does not know it yet
        payment.refresh_from_db()
        assert payment.status == "initiating", "'not found' while the create is on the wire is not final"
    finally:
        xendit_fake.create_gate.set()
        thread.join(30)

    response = answers["initiation"]
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "payment_closed"
    assert created_url_absent(
        response.content.decode(), xendit_fake
    )  # no checkout URL anywhere in the answer

    payment.refresh_from_db()
    assert payment.status == "expired" and payment.payment_url == ""
    created = xendit_fake.invoices[payment.gateway_reference]
    assert created["status"] == "EXPIRED", "the checkout created on the wire must be expired at Xendit"
    assert Invoice.objects.get(pk=invoice.id).status == "void"
    assert payment.id not in payments_to_reconcile()
    # The customer can no longer pay: the gateway would refuse; and GET never shows a URL.
    shown = client.get(f"/v1/payments/{payment.id}").json()
    assert shown["status"] == "expired" and not shown.get("payment_url")
