"""The read-only payments admin: gateway calls (redacted) and webhook events per payment, the reconcile action,
and the payments inline on the invoice admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import Client

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


def test_reconcile_action_asks_the_gateway(api, merchant, xendit_account, xendit_fake, staff):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    payment = Payment.objects.get(pk=payment_id)
    Payment.objects.filter(pk=payment_id).update(status="unknown")
    xendit_fake.mark_paid(payment.gateway_reference)

    response = staff.post(
        "/admin/payments/payment/", {"action": "reconcile_selected", "_selected_action": [payment_id]}
    )

    assert response.status_code == 302
    assert Payment.objects.get(pk=payment_id).status == "succeeded"


def test_invoice_admin_lists_its_payments(api, merchant, staff):
    invoice = make_invoice(merchant)
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]

    page = staff.get(f"/admin/invoices/invoice/{quote(invoice.id)}/change/")

    assert page.status_code == 200
    assert payment_id in page.content.decode()
