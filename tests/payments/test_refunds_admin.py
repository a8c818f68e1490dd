"""The payment admin's "Refund" action, as the roles (staff users made by `staff_save`, never only superusers):
finance gets a form (default: all still refundable), a confirmation page, then the refund through
`refund_create` (origin `admin`), audited and in the payment's history; support has no such action and a forged
POST is a 403 that changes nothing. Every role reads the refunds list."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from apikeys.models import AuditLog
from payments.models import Refund
from tests.payments.refund_support import paid_sandbox_payment
from tests.reporting.test_roles import login

pytestmark = pytest.mark.django_db

URL = "/admin/payments/payment/"


def _step(client, payment, **fields):
    return client.post(
        URL, {"action": "refund_selected", "_selected_action": [payment.pk], "index": "0", **fields}
    )


def test_finance_refunds_a_payment_through_the_form_and_the_confirmation(merchant):
    payment = paid_sandbox_payment(merchant)
    client = login("finance")

    assert '<option value="refund_selected"' in client.get(URL).content.decode()
    form = _step(client, payment)
    assert form.status_code == 200
    assert 'name="amount"' in form.content.decode() and 'value="150000"' in form.content.decode()
    confirm = _step(client, payment, amount="45,000", reason="Goodwill", refund_step="confirm")
    assert confirm.status_code == 200 and "IDR 45,000" in confirm.content.decode()
    assert not Refund.objects.exists()  # nothing before the confirmation
    done = _step(client, payment, amount="45000", reason="Goodwill", refund_step="apply")

    assert done.status_code == 302
    refund = Refund.objects.get()
    assert (refund.origin, refund.amount_minor, refund.status, refund.reason) == (
        "admin",
        45000,
        "succeeded",
        "Goodwill",
    )
    audit = AuditLog.objects.get(actor="user:finance-user", details__action_name="payments.refund")
    assert audit.details["refund"] == refund.pk and payment.pk in str(audit.details)
    history = LogEntry.objects.get(object_id=payment.pk, user__username="finance-user")
    assert refund.pk in history.get_change_message()


def test_an_amount_above_what_is_refundable_is_refused_and_writes_nothing(merchant):
    payment = paid_sandbox_payment(merchant)
    client = login("finance")

    response = _step(client, payment, amount="150001", refund_step="apply", follow=True)
    bad = _step(client, payment, amount="12.5", refund_step="confirm")

    assert (
        "exceeds what is still refundable" in client.get(URL).content.decode() or response.status_code == 302
    )
    assert bad.status_code == 200 and "at most 0 decimal places" in bad.content.decode()
    assert not Refund.objects.exists()
    assert not AuditLog.objects.filter(details__action_name="payments.refund").exists()


def test_support_has_no_refund_action_and_a_forged_post_is_403(merchant):
    payment = paid_sandbox_payment(merchant)
    client = login("support")

    assert '<option value="refund_selected"' not in client.get(URL).content.decode()
    response = _step(client, payment, amount="1000", refund_step="apply")

    assert response.status_code == 403
    assert not Refund.objects.exists()
    assert not AuditLog.objects.filter(details__action_name="payments.refund").exists()


@pytest.mark.parametrize("role", ["support", "finance", "operations", "administrator"])
def test_every_role_reads_the_refunds_list_and_a_refund(role, merchant):
    payment = paid_sandbox_payment(merchant)
    client = login("finance")
    _step(client, payment, amount="1000", refund_step="apply")
    refund = Refund.objects.get()

    reader = login(role)
    assert refund.pk in reader.get("/admin/payments/refund/").content.decode()
    assert reader.get(f"/admin/payments/refund/{refund.pk}/change/").status_code == 200
