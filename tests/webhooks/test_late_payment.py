"""A payment made before the invoice's deadline but reported after it (issue 11 point 6, docs/adr/0025), per gateway,
through the real inbound endpoint and processing: the customer pays, the invoice's lapse time passes, the expiry job
expires the invoice (`invoice.expired` sent), and only then is the gateway's notification received / processed. The
gateway's own paid time (Xendit `paid_at`, Midtrans `settlement_time` from the status query, the sandbox's signed
`occurred_at`) is before the lapse time, so the money pays the invoice as if it had arrived in time. Money whose paid
time is after the lapse keeps being unapplied overpayment of the expired invoice."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from gateways.models import SandboxCheckoutSession
from invoices.models import Invoice
from payments.models import Payment
from payments.services import invoices_expire_overdue
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    _fresh_breakers,
    merchant,
    midtrans_account,
    midtrans_fake,
    new_payment,
    post_webhook,
    process_all,
    wib,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def _lapse_passes_and_the_job_expires(payment: Payment) -> None:
    """The invoice's lapse time is now (after the customer paid) and the expiry job runs before the notification
    is processed. (The clock is simulated by moving the deadline: expires_at/lapses_at may change after
    initiation.)"""
    lapse = timezone.now()
    Invoice.objects.filter(pk=payment.invoice_id).update(expires_at=lapse, lapses_at=lapse)
    assert invoices_expire_overdue() == 1
    assert Invoice.objects.get(pk=payment.invoice_id).status == "expired"


def _assert_paid_in_time(api, payment: Payment) -> None:
    invoice = api.get(f"/v1/invoices/{payment.invoice_id}").json()
    assert (invoice["status"], invoice["amount_paid"], invoice["amount_due"]) == ("paid", "150000", "0")
    assert Invoice.objects.get(pk=payment.invoice_id).expired_at is None
    assert api.get(f"/v1/invoices/{payment.invoice_id}/overpayment").json()["amount"] == "0"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 150000)
    types = list(Event.objects.order_by("created_at", "id").values_list("type", flat=True))
    # The invoice.expired already sent stays; invoice.paid follows it (once).
    assert types.index("invoice.expired") < types.index("invoice.paid")
    assert types.count("invoice.paid") == 1 and types.count("payment.succeeded") == 1
    assert Event.objects.get(type="invoice.paid").data["status"] == "paid"


def test_sandbox_payment_made_before_the_lapse_and_processed_after_it_pays_the_invoice(api, merchant):
    payment = new_payment(api, merchant, gateway="sandbox")
    session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
    browser = Client()
    path = "/" + payment.payment_url.split("://", 1)[1].split("/", 1)[1]
    assert browser.get(path).status_code == 200
    # The customer pays on the hosted page: the signed notification is stored, its processing not yet run.
    assert browser.post(path, {"nonce": session.form_nonce, "action": "pay"}).status_code == 200
    assert InboundNotification.objects.get().status == "received"

    _lapse_passes_and_the_job_expires(payment)
    outcomes = process_all()

    assert outcomes == ["processed"]
    _assert_paid_in_time(api, payment)


def test_xendit_callback_after_the_lapse_with_paid_at_before_it_pays_the_invoice(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    paid_at = timezone.now()  # the customer pays
    _lapse_passes_and_the_job_expires(payment)

    response = post_webhook(
        "xendit", xendit_account.id, xendit_callback(payment, at=paid_at), **xendit_headers()
    )
    outcomes = process_all()

    assert (response.status_code, outcomes) == (200, ["processed"])
    _assert_paid_in_time(api, payment)


def test_midtrans_notification_after_the_lapse_with_settlement_before_it_pays_the_invoice(
    api, merchant, midtrans_account, midtrans_fake
):
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "settlement")
    # Midtrans' record (what the status query answers): settled now, before the lapse.
    midtrans_fake.transactions[payment.id]["settlement_time"] = wib(timezone.now())
    _lapse_passes_and_the_job_expires(payment)

    response = post_webhook("midtrans", midtrans_account.id, midtrans_fake.notification(payment.id))
    outcomes = process_all()

    assert (response.status_code, outcomes) == (200, ["processed"])
    _assert_paid_in_time(api, payment)


def test_money_paid_after_the_lapse_is_still_overpayment_of_the_expired_invoice(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    lapse = timezone.now() - timedelta(minutes=1)
    Invoice.objects.filter(pk=payment.invoice_id).update(expires_at=lapse, lapses_at=lapse)
    assert invoices_expire_overdue() == 1

    post_webhook(
        "xendit",
        xendit_account.id,
        xendit_callback(payment, at=lapse + timedelta(seconds=30)),
        **xendit_headers(),
    )
    assert process_all() == ["processed"]

    invoice = api.get(f"/v1/invoices/{payment.invoice_id}").json()
    assert (invoice["status"], invoice["amount_paid"]) == ("expired", "0")
    assert api.get(f"/v1/invoices/{payment.invoice_id}/overpayment").json()["amount"] == "150000"
    assert not Event.objects.filter(type__in=["invoice.paid", "invoice.partially_paid"]).exists()
