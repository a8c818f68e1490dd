"""Voiding an invoice closes its open gateway payment: no money can arrive on a void invoice afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from invoices.models import Invoice
from payments.models import Payment
from payments.services import payment_reconcile
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


def _queued_reconciles() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args->>'payment_id' FROM procrastinate_jobs "
            "WHERE task_name = 'payments.reconcile_payment' AND status = 'todo' ORDER BY id"
        )
        return [row[0] for row in cursor.fetchall()]


def test_void_expires_the_open_xendit_payment_at_the_gateway(api, merchant, xendit_account, xendit_fake):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == "pending" and payment.expires_at > timezone.now() + timedelta(hours=1)

    before = timezone.now()
    response = api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "void"
    payment.refresh_from_db()
    assert payment.status == "pending"  # the gateway is asked by the job, outside the void's transaction
    assert before <= payment.expires_at <= timezone.now()
    assert _queued_reconciles() == [payment_id]
    assert xendit_fake.invoices[payment.gateway_reference]["status"] == "PENDING"

    payment_reconcile(payment_id=payment_id)  # what the queued payments.reconcile_payment job runs

    payment.refresh_from_db()
    assert payment.status == "expired" and payment.pain002_status == "RJCT"
    assert any(
        r.path.endswith(f"/invoices/{payment.gateway_reference}/expire!") for r in xendit_fake.requests
    )
    assert xendit_fake.invoices[payment.gateway_reference]["status"] == "EXPIRED"
    assert Invoice.objects.get(pk=invoice.id).status == "void"


def test_a_void_that_rolls_back_leaves_the_payment_and_queues_nothing(
    api, merchant, xendit_account, xendit_fake
):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    expires_at = Payment.objects.get(pk=payment_id).expires_at
    Invoice.objects.filter(pk=invoice.id).update(amount_paid_minor=1)  # money received: not voidable

    response = api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json")

    assert response.status_code == 409 and response.json()["error"]["code"] == "invoice_not_voidable"
    assert Payment.objects.get(pk=payment_id).expires_at == expires_at
    assert _queued_reconciles() == []


def test_voiding_a_draft_queues_nothing(api, merchant):
    invoice = make_invoice(merchant)
    assert api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json").status_code == 200
    assert _queued_reconciles() == []


def test_a_payment_paid_at_the_gateway_before_the_job_runs_is_applied_not_expired(
    api, merchant, xendit_account, xendit_fake
):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    assert api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json").status_code == 200
    payment = Payment.objects.get(pk=payment_id)
    xendit_fake.mark_paid(payment.gateway_reference)  # the customer paid just before the void reached Xendit

    payment_reconcile(payment_id=payment_id)

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert not any(r.path.endswith("/expire!") for r in xendit_fake.requests)
    invoice = Invoice.objects.get(pk=invoice.id)
    assert invoice.status == "void"
    total = api.get(f"/v1/invoices/{invoice.id}").json()["total"]
    assert api.get(f"/v1/invoices/{invoice.id}/overpayment").json()["amount"] == total  # all of it, kept
