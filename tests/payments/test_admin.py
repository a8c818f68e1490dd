"""The read-only payments admin: gateway calls (redacted) and a link to the inbound notifications per payment, the
reconcile action; and the invoice admin this app registers: its payments inline and the void / expire actions
(through the payments services, audited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apikeys.models import AuditLog
from invoices.models import Invoice
from payments.models import Payment
from tests.payments.conftest import XENDIT_SECRET
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = get_user_model().objects.create_superuser("finance", "finance@example.com", "pw-123456789")
    client = Client()
    client.force_login(user)
    return client


def test_payment_admin_shows_gateway_calls_without_secrets(api, merchant, xendit_account, xendit_fake, staff):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]

    listing = staff.get("/admin/payments/payment/", {"status__exact": "pending", "gateway": "xendit"})
    page = staff.get(f"/admin/payments/payment/{quote(payment_id)}/change/")

    assert listing.status_code == 200 and payment_id in listing.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert "create_payment" in html and "invoice_url" in html
    assert XENDIT_SECRET not in html
    assert (
        staff.post(f"/admin/payments/payment/{quote(payment_id)}/change/", {}).status_code == 403
    )  # read-only


def _queued_reconciles() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args->>'payment_id' FROM procrastinate_jobs "
            "WHERE task_name = 'payments.reconcile_payment' AND status = 'todo' ORDER BY id"
        )
        return [row[0] for row in cursor.fetchall()]


def test_reconcile_action_queues_jobs_and_calls_no_gateway_in_the_request(
    api, merchant, xendit_account, xendit_fake, staff
):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    payment = Payment.objects.get(pk=payment_id)
    Payment.objects.filter(pk=payment_id).update(status="unknown")
    xendit_fake.mark_paid(payment.gateway_reference)
    final = make_invoice(merchant, gateway="xendit")
    final_id = api.post(f"/v1/invoices/{final.id}/payments", {}, format="json").json()["id"]
    Payment.objects.filter(pk=final_id).update(status="failed")
    calls_before = len(xendit_fake.requests)

    response = staff.post(
        "/admin/payments/payment/",
        {"action": "reconcile_selected", "_selected_action": [payment_id, final_id]},
        follow=True,
    )

    assert response.status_code == 200
    assert (
        "Queued 1 reconciliation job; 1 of the 2 selected payments are already final."
        in response.content.decode()
    )
    assert len(xendit_fake.requests) == calls_before  # nothing asked inside the admin request
    assert Payment.objects.get(pk=payment_id).status == "unknown"
    assert _queued_reconciles() == [payment_id]

    from payments.services import payment_reconcile

    payment_reconcile(payment_id=payment_id)  # what the queued job runs
    assert Payment.objects.get(pk=payment_id).status == "succeeded"


def test_invoice_admin_lists_its_payments(api, merchant, staff):
    invoice = make_invoice(merchant)
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]

    page = staff.get(f"/admin/invoices/invoice/{quote(invoice.id)}/change/")

    assert page.status_code == 200
    assert payment_id in page.content.decode()


def test_invoice_admin_void_action_closes_the_open_payment_and_is_audited(api, merchant, staff):
    invoice = make_invoice(merchant)
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    before = timezone.now()

    response = staff.post(
        "/admin/invoices/invoice/", {"action": "void_selected", "_selected_action": [invoice.id]}
    )

    assert response.status_code == 302
    assert Invoice.objects.get(pk=invoice.id).status == "void"
    assert before <= Payment.objects.get(pk=payment_id).expires_at <= timezone.now()  # closed
    audit = AuditLog.objects.get(action=AuditLog.Action.ADMIN_ACTION, details__action_name="invoices.void")
    assert audit.details["invoices"] == [invoice.id] and audit.actor == "user:finance"


def test_invoice_admin_expire_action_expires_only_overdue_invoices(api, merchant, staff):
    overdue = make_invoice(merchant, expires_in=timedelta(hours=2), now=timezone.now() - timedelta(hours=3))
    current = make_invoice(merchant)

    response = staff.post(
        "/admin/invoices/invoice/",
        {"action": "expire_overdue_selected", "_selected_action": [overdue.id, current.id]},
    )

    assert response.status_code == 302
    assert Invoice.objects.get(pk=overdue.id).status == "expired"
    assert Invoice.objects.get(pk=current.id).status == "draft"


def test_payment_page_links_to_the_inbound_notifications_naming_it(api, merchant, staff):
    invoice = make_invoice(merchant)
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]

    page = staff.get(f"/admin/payments/payment/{quote(payment_id)}/change/").content.decode()
    link = f"/admin/inbound/inboundnotification/?payment={payment_id}"

    assert link in page
    assert staff.get(link).status_code == 200
