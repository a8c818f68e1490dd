"""The review queue in the admin, as the roles (staff users made by `staff_save`): finance approves a flagged
manual-capture payment (held until then: captured in full) and rejects a flagged succeeded payment (refunded in
full), each after a confirmation page, audited and in the payment's history; support sees the queue but has no
action, and a forged POST is a 403 that changes nothing. Finance edits a merchant's rules in the admin (audited,
applied to the next payment)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from apikeys.models import AuditLog
from payments.models import Payment, Refund
from risk.models import RiskSettings
from tests.payments.factories import make_invoice
from tests.payments.refund_support import paid_sandbox_payment
from tests.payments.test_capture import _authorize_on_checkout_page
from tests.reporting.test_roles import login

pytestmark = pytest.mark.django_db

URL = "/admin/payments/paymentreview/"


def _act(client, action, payment, **fields):
    return client.post(URL, {"action": action, "_selected_action": [payment.pk], "index": "0", **fields})


@pytest.fixture
def flag_everything(merchant, set_rules):
    set_rules(merchant, amount_thresholds={"IDR": "100000"})  # 150000 > 100000: score 60, review


def test_finance_approves_a_held_payment_and_it_is_captured(merchant, api, flag_everything):
    invoice = make_invoice(merchant, amount="150000")
    created = api.post(
        f"/v1/invoices/{invoice.id}/payments", {"capture_method": "manual"}, format="json"
    ).json()
    _authorize_on_checkout_page(created)
    assert Payment.objects.get(pk=created["id"]).status == "authorized"
    client = login("finance")

    queue = client.get(URL).content.decode()
    assert created["id"] in queue and "amount_over_threshold" in queue
    assert 'value="approve_selected"' in queue
    confirm = _act(client, "approve_selected", Payment.objects.get(pk=created["id"]))
    assert confirm.status_code == 200 and "captured in full" in confirm.content.decode()
    assert Payment.objects.get(pk=created["id"]).status == "authorized"  # nothing before the confirmation
    done = _act(client, "approve_selected", Payment.objects.get(pk=created["id"]), review_step="apply")

    assert done.status_code == 302
    payment = Payment.objects.get(pk=created["id"])
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 150000)
    assert (payment.review_status, payment.reviewed_by) == ("approved", "user:finance-user")
    audit = AuditLog.objects.get(actor="user:finance-user", details__action_name="payments.review_approve")
    assert audit.details["followed"] == "captured" and payment.pk in audit.details["payments"]
    assert LogEntry.objects.filter(object_id=payment.pk, user__username="finance-user").exists()
    shown = api.get(f"/v1/payments/{payment.pk}").json()
    assert shown["review"]["status"] == "approved" and shown["review"]["reviewed_at"]
    # Decided once: a second approval is refused.
    again = _act(client, "approve_selected", payment, review_step="apply")
    assert again.status_code == 302 and Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_finance_rejects_a_succeeded_payment_and_it_is_refunded(merchant, flag_everything):
    payment = paid_sandbox_payment(merchant)
    assert payment.review_status == "pending"
    client = login("finance")

    confirm = _act(client, "reject_selected", payment)
    assert confirm.status_code == 200 and "refunded" in confirm.content.decode()
    assert not Refund.objects.exists()
    done = _act(client, "reject_selected", payment, review_step="apply")

    assert done.status_code == 302
    refund = Refund.objects.get(payment=payment)
    assert (refund.origin, refund.amount_minor, refund.status) == ("admin", 150000, "succeeded")
    payment.refresh_from_db()
    assert (payment.status, payment.review_status) == ("refunded", "rejected")
    audit = AuditLog.objects.get(details__action_name="payments.review_reject")
    assert audit.details["followed"] == "refunded" and audit.details["detail"] == refund.pk


def test_support_sees_the_queue_without_actions_and_a_forged_post_is_403(merchant, flag_everything):
    payment = paid_sandbox_payment(merchant)
    client = login("support")
    page = client.get(URL).content.decode()
    assert payment.pk in page and "approve_selected" not in page and "reject_selected" not in page
    assert _act(client, "approve_selected", payment, review_step="apply").status_code == 403
    assert _act(client, "reject_selected", payment, review_step="apply").status_code == 403
    payment.refresh_from_db()
    assert (payment.status, payment.review_status) == ("succeeded", "pending")
    assert not Refund.objects.exists()


def test_finance_edits_a_merchants_rules_in_the_admin(merchant):
    client = login("finance")
    form = {
        "merchant": merchant.pk,
        "mode": "test",
        "review_threshold": "40",
        "block_threshold": "90",
        "velocity_email_hour": "2",
        "velocity_email_day": "",
        "velocity_ip_hour": "10",
        "velocity_ip_day": "",
        "velocity_device_hour": "",
        "velocity_device_day": "",
        "amount_thresholds": "IDR 1,000,000\nusd 250.5",
        "new_customer_thresholds": "",
        "blocked_emails": "Fraud@Example.com",
        "blocked_email_domains": "",
        "blocked_ips": "203.0.113.0/24\n198.51.100.7",
        "blocked_device_ids": "",
    }
    bad = client.post("/admin/risk/risksettings/add/", {**form, "blocked_ips": "10.0.0.1/8"})
    assert bad.status_code == 200 and "not an IP address or CIDR block" in bad.content.decode()
    assert not RiskSettings.objects.exists()

    saved = client.post("/admin/risk/risksettings/add/", form)

    assert saved.status_code == 302, saved.content.decode()[:2000]
    row = RiskSettings.objects.get(merchant=merchant, mode="test")
    assert (row.review_threshold, row.velocity_email_hour, row.velocity_email_day) == (40, 2, None)
    assert row.amount_thresholds == {"IDR": 1000000, "USD": 25050}
    assert row.blocked_emails == ["fraud@example.com"]
    assert row.blocked_ips == ["203.0.113.0/24", "198.51.100.7"]
    audit = AuditLog.objects.get(actor="user:finance-user", details__action_name="risk_settings.update")
    assert audit.merchant_id == merchant.pk
    edit = client.get(f"/admin/risk/risksettings/{row.pk}/change/").content.decode()
    assert "IDR 1000000" in edit and "USD 250.50" in edit
    # Support reads but cannot change.
    support = login("support")
    assert support.get(f"/admin/risk/risksettings/{row.pk}/change/").status_code == 200
    assert support.post(f"/admin/risk/risksettings/{row.pk}/change/", form).status_code == 403
