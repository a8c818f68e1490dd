"""Reconciliation asks the (fake) gateway about unknown / stuck / overdue payments and applies its answer through
the same code path as webhooks."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from invoices.models import Invoice
from payments.models import GatewayCall, Payment
from payments.services import payments_reconcile, payments_to_reconcile
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


def _initiate(api, invoice_id):
    return api.post(f"/v1/invoices/{invoice_id}/payments", {}, format="json")


def test_timed_out_create_is_resolved_by_reconciliation_via_get_status(
    api, merchant, xendit_account, xendit_fake, fast_timeout
):
    invoice = make_invoice(merchant, gateway="xendit", amount="150000")
    xendit_fake.hang_after_create = True
    assert _initiate(api, invoice.id).status_code == 504
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "unknown"
    # Xendit did create it, and the customer... could not pay (no URL). Meanwhile someone paid it at the gateway.
    (xendit_invoice,) = xendit_fake.invoices.values()
    xendit_fake.mark_paid(xendit_invoice["id"])
    xendit_fake.hang_after_create = False

    out = StringIO()
    call_command("reconcile_payments", stdout=out)

    assert "checked 1, changed 1" in out.getvalue()
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.gateway_reference == xendit_invoice["id"]
    assert payment.amount_received_minor == 150000
    assert payment.pain002_status == "ACSC"
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    lookup = [r for r in xendit_fake.requests if r.method == "GET"]
    assert lookup and lookup[0].query["external_id"] == [payment.id]
    assert GatewayCall.objects.filter(payment=payment, operation="get_status", outcome="ok").exists()


def test_unknown_payment_the_gateway_never_created_is_failed_and_a_new_one_can_start(
    api, merchant, xendit_account, xendit_fake, fast_timeout
):
    invoice = make_invoice(merchant, gateway="xendit")
    xendit_fake.behaviour = "timeout"  # the request never reached Xendit's database
    assert _initiate(api, invoice.id).status_code == 504
    xendit_fake.behaviour = "normal"

    summary = payments_reconcile()

    assert (summary.checked, summary.changed) == (1, 1)
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "failed"
    assert payment.failure_code == "gateway_payment_not_found"
    assert _initiate(api, invoice.id).status_code == 201


def test_unknown_with_gateway_still_pending_becomes_pending_with_url(
    api, merchant, xendit_account, xendit_fake, fast_timeout
):
    invoice = make_invoice(merchant, gateway="xendit")
    xendit_fake.hang_after_create = True
    _initiate(api, invoice.id)
    xendit_fake.hang_after_create = False

    payments_reconcile()

    payment = Payment.objects.get(invoice=invoice)
    (xendit_invoice,) = xendit_fake.invoices.values()
    assert payment.status == "pending"
    assert payment.payment_url == xendit_invoice["invoice_url"]
    assert payment.failure_code == ""
    # A repeat initiation now returns the recovered payment with its URL.
    again = _initiate(api, invoice.id)
    assert again.status_code == 200 and again.json()["payment_url"] == xendit_invoice["invoice_url"]


def test_pending_payment_past_expiry_is_expired_at_the_gateway(api, merchant, xendit_account, xendit_fake):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = _initiate(api, invoice.id).json()["id"]
    later = timezone.now() + timedelta(hours=25)  # the payment expired (max 24 h), Xendit still shows PENDING

    summary = payments_reconcile(now=later)

    assert summary.changed == 1
    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == "expired"
    assert payment.pain002_status == "RJCT"
    assert any(r.path.endswith("/expire!") for r in xendit_fake.requests)
    assert xendit_fake.invoices[payment.gateway_reference]["status"] == "EXPIRED"


def test_stale_initiating_payment_without_gateway_record_is_failed(merchant):
    invoice = make_invoice(merchant)
    from payments.services.initiation import _phase1_record  # a request that crashed right after phase 1

    payment, _ = _phase1_record(invoice_id=invoice.id, installment_number=None, now=timezone.now())
    assert payments_to_reconcile() == []  # not yet: it may still be waiting for the gateway
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    payments_reconcile()

    payment.refresh_from_db()
    assert payment.status == "failed"
    assert Invoice.objects.get(pk=invoice.id).status == "pending"


def test_reconciliation_backs_off_per_payment(api, merchant, xendit_account, xendit_fake, fast_timeout):
    invoice = make_invoice(merchant, gateway="xendit")
    xendit_fake.hang_after_create = True
    _initiate(api, invoice.id)
    xendit_fake.behaviour = "error500"  # the gateway cannot answer status queries either

    now = timezone.now()
    assert payments_reconcile(now=now).checked == 1
    assert payments_reconcile(now=now + timedelta(seconds=30)).checked == 0  # asked a moment ago
    assert payments_reconcile(now=now + timedelta(minutes=3)).checked == 1
    assert Payment.objects.get(invoice=invoice).status == "unknown"
