"""POST /v1/webhooks/{gateway}/{account}: verify first, store raw, dedup, queue; then processing maps recorded
Xendit / Midtrans payloads onto the payment and invoice state machines."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

import json

import pytest
from django.db import connection

from invoices.models import Installment, Invoice
from payments.models import Payment
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    XENDIT_CALLBACK_TOKEN,
    _fresh_breakers,
    merchant,
    midtrans_account,
    midtrans_fake,
    midtrans_notification,
    new_payment,
    post_webhook,
    process_all,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def _jobs(task_name: str = "webhooks.process_inbound_event") -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", [task_name])
        return cursor.fetchone()[0]


def _event_types(merchant) -> list[str]:
    return list(
        Event.objects.filter(merchant=merchant).order_by("created_at", "id").values_list("type", flat=True)
    )


# ---- Xendit ---------------------------------------------------------------------------------------------------


def test_xendit_paid_is_stored_raw_acked_and_processing_pays_the_invoice(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    body = xendit_callback(payment, status="PAID")
    jobs_before = _jobs()

    response = post_webhook("xendit", xendit_account.id, body, **xendit_headers())

    assert response.status_code == 200, response.content
    ack = response.json()
    assert ack["received"] is True and ack["duplicate"] is False
    event = InboundNotification.objects.get()
    assert event.id == ack["id"] and event.id.startswith("whk_")
    assert bytes(event.body) == body
    assert event.headers["x-callback-token"] == "[redacted]"
    assert XENDIT_CALLBACK_TOKEN not in json.dumps(event.headers)
    assert (event.status, event.payment_reference, event.notification_status) == (
        "received",
        payment.id,
        "succeeded",
    )
    assert _jobs() == jobs_before + 1
    payment.refresh_from_db()
    assert payment.status == "pending"  # acknowledged before processing

    assert process_all() == ["processed"]

    payment.refresh_from_db()
    event.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.amount_received_minor == 150000
    assert (payment.pain002_status, payment.pain002_reason) == ("ACSC", "")
    assert event.status == "processed" and event.payment_id == payment.id
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert "payment.succeeded" in _event_types(merchant)
    assert _event_types(merchant).index("payment.succeeded") < _event_types(merchant).index("invoice.paid")


def test_xendit_expired_expires_the_payment_and_leaves_the_invoice_open(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")

    post_webhook("xendit", xendit_account.id, xendit_callback(payment, status="EXPIRED"), **xendit_headers())
    process_all()

    payment.refresh_from_db()
    assert payment.status == "expired"
    assert (payment.pain002_status, payment.pain002_reason) == ("RJCT", "NARR")
    assert Invoice.objects.get(pk=payment.invoice_id).status == "pending"
    # The installment can be paid with a new payment.
    assert api.post(f"/v1/invoices/{payment.invoice_id}/payments", {}, format="json").status_code == 201


def test_late_expired_after_paid_changes_nothing(api, merchant, xendit_account, xendit_fake):
    payment = new_payment(api, merchant, gateway="xendit")
    post_webhook("xendit", xendit_account.id, xendit_callback(payment, status="PAID"), **xendit_headers())
    process_all()
    events_before = _event_types(merchant)

    post_webhook("xendit", xendit_account.id, xendit_callback(payment, status="EXPIRED"), **xendit_headers())
    assert process_all() == ["already_processed", "processed"]

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert _event_types(merchant) == events_before
    late = InboundNotification.objects.get(notification_status="expired")
    assert late.status == "processed" and "not allowed" in late.outcome


def test_expired_arriving_before_paid_then_paid_still_collects_the_money(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    post_webhook("xendit", xendit_account.id, xendit_callback(payment, status="EXPIRED"), **xendit_headers())
    post_webhook("xendit", xendit_account.id, xendit_callback(payment, status="PAID"), **xendit_headers())

    process_all()

    payment.refresh_from_db()
    assert payment.status == "succeeded"  # money is never refused: expired -> succeeded
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"


def test_xendit_underpayment_leaves_installment_partly_paid(api, merchant, xendit_account, xendit_fake):
    payment = new_payment(api, merchant, gateway="xendit", amount="150000")

    post_webhook(
        "xendit", xendit_account.id, xendit_callback(payment, paid_amount=100000), **xendit_headers()
    )
    process_all()

    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 100000)
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    assert (invoice.status, invoice.amount_paid_minor) == ("partially_paid", 100000)
    assert Installment.objects.get(invoice=invoice).status == "partially_paid"


def test_duplicate_delivery_returns_200_and_changes_nothing(api, merchant, xendit_account, xendit_fake):
    payment = new_payment(api, merchant, gateway="xendit")
    body = xendit_callback(payment)
    first = post_webhook("xendit", xendit_account.id, body, **xendit_headers())
    jobs = _jobs()

    second = post_webhook("xendit", xendit_account.id, body, **xendit_headers())

    assert second.status_code == 200
    assert second.json() == {"received": True, "id": None, "duplicate": True}
    assert InboundNotification.objects.get().id == first.json()["id"]
    assert _jobs() == jobs


# ---- Midtrans -------------------------------------------------------------------------------------------------


def test_midtrans_settlement_pays(api, merchant, midtrans_account, midtrans_fake):
    payment = new_payment(api, merchant, gateway="midtrans", amount="154600")
    midtrans_fake.set_status(payment.id, "settlement")  # what the status query (the truth) answers

    response = post_webhook("midtrans", midtrans_account.id, midtrans_notification(payment))
    process_all()

    assert response.status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 154600)
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"


def test_midtrans_expire_expires_the_payment(api, merchant, midtrans_account, midtrans_fake):
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "expire")

    post_webhook("midtrans", midtrans_account.id, midtrans_notification(payment, transaction_status="expire"))
    process_all()

    payment.refresh_from_db()
    assert payment.status == "expired"
    assert Invoice.objects.get(pk=payment.invoice_id).status == "pending"


@pytest.mark.parametrize(
    ("transaction_status", "code", "reason"), [("deny", "fraud_deny", "NARR"), ("failure", "failure", "NARR")]
)
def test_midtrans_deny_or_failure_fails_the_payment_but_leaves_the_invoice_open(
    api, merchant, midtrans_account, midtrans_fake, transaction_status, code, reason
):
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(
        payment.id, transaction_status, fraud_status="deny" if transaction_status == "deny" else None
    )

    post_webhook(
        "midtrans", midtrans_account.id, midtrans_notification(payment, transaction_status=transaction_status)
    )
    process_all()

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", code)
    assert (payment.pain002_status, payment.pain002_reason) == ("RJCT", reason)
    assert Invoice.objects.get(pk=payment.invoice_id).status == "pending"
    assert "payment.failed" in _event_types(merchant)


def test_midtrans_capture_then_settlement_is_one_state_change(api, merchant, midtrans_account, midtrans_fake):
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "settlement")
    post_webhook(
        "midtrans", midtrans_account.id, midtrans_notification(payment, transaction_status="capture")
    )
    post_webhook("midtrans", midtrans_account.id, midtrans_notification(payment))

    process_all()

    assert InboundNotification.objects.filter(status="processed").count() == 2
    assert _event_types(merchant).count("payment.succeeded") == 1
    assert Invoice.objects.get(pk=payment.invoice_id).amount_paid_minor == payment.amount_minor


# ---- refusals: 401 / 400 / 404, never a 500, nothing stored ----------------------------------------------------


def test_forged_or_missing_xendit_token_is_401_and_nothing_is_stored(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    body = xendit_callback(payment)

    forged = post_webhook("xendit", xendit_account.id, body, **xendit_headers("cbtok_forged"))
    missing = post_webhook("xendit", xendit_account.id, body)

    assert (forged.status_code, missing.status_code) == (401, 401)
    assert forged.json()["error"]["type"] == "authentication_error"
    assert missing.json()["error"]["code"] == "webhook_signature_missing"
    assert not InboundNotification.objects.exists()


def test_forged_midtrans_signature_is_401(api, merchant, midtrans_account, midtrans_fake):
    payment = new_payment(api, merchant, gateway="midtrans")
    forged = midtrans_notification(payment, server_key="SB-Mid-server-SOMEONE-ELSE")
    tampered = json.loads(midtrans_notification(payment))
    tampered["gross_amount"] = "1.00"  # signature no longer matches the amount

    assert post_webhook("midtrans", midtrans_account.id, forged).status_code == 401
    assert post_webhook("midtrans", midtrans_account.id, json.dumps(tampered).encode()).status_code == 401
    assert not InboundNotification.objects.exists()


def test_the_published_midtrans_sample_with_its_original_signature_is_refused(merchant, midtrans_account):
    from tests.fakes.samples import sample_bytes

    response = post_webhook("midtrans", midtrans_account.id, sample_bytes("midtrans_settlement.json"))

    assert response.status_code == 401


def test_forged_sandbox_signature_is_401(api, merchant):
    from gateways.sandbox import webhooks as sandbox_webhooks
    from tests.payments.factories import sandbox_account

    account = sandbox_account(merchant)
    body = b'{"id":"sbxevt_x"}'
    headers = sandbox_webhooks.sign("sbxsec_not_the_secret", body)

    response = post_webhook(
        "sandbox", account.id, body, HTTP_X_SANDBOX_SIGNATURE=headers["X-Sandbox-Signature"]
    )

    assert response.status_code == 401
    assert not InboundNotification.objects.exists()


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"id": "x"}', b"\xff\xfe"])
def test_malformed_xendit_body_with_valid_token_is_400(merchant, xendit_account, body):
    response = post_webhook("xendit", xendit_account.id, body, **xendit_headers())

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_payload_invalid"
    assert not InboundNotification.objects.exists()


def test_malformed_midtrans_json_is_400(merchant, midtrans_account):
    response = post_webhook("midtrans", midtrans_account.id, b'{"order_id": "pay_1", ')
    assert response.status_code == 400


def test_unknown_account_or_gateway_mismatch_is_404(merchant, xendit_account, midtrans_account):
    body = b"{}"
    assert post_webhook("xendit", "gwa_doesnotexist", body, **xendit_headers()).status_code == 404
    mismatch = post_webhook("midtrans", xendit_account.id, body)
    assert mismatch.status_code == 404
    assert mismatch.json()["error"]["type"] == "invalid_request_error"
    assert post_webhook("paypal", xendit_account.id, body).status_code == 404


def test_inbound_endpoint_needs_no_api_key_and_ignores_one(
    merchant, xendit_account, api_key, xendit_fake, api
):
    payment = new_payment(api, merchant, gateway="xendit")
    response = post_webhook(
        "xendit",
        xendit_account.id,
        xendit_callback(payment),
        HTTP_AUTHORIZATION="Bearer nonsense",
        **xendit_headers(),
    )
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response


def test_notification_for_a_payment_this_account_does_not_know_is_stored_then_failed(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    data = json.loads(xendit_callback(payment))
    data["external_id"] = "order-from-the-xendit-dashboard"

    response = post_webhook("xendit", xendit_account.id, json.dumps(data).encode(), **xendit_headers())
    outcome = process_all()

    assert response.status_code == 200  # acknowledged: a 4xx would only make Xendit retry it six times
    assert outcome == ["failed"]  # permanent: no retries
    event = InboundNotification.objects.get()
    assert event.status == "failed" and "payment_unknown_to_paytrust" in event.last_error
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    listed = api.get("/v1/webhooks/failed").json()["data"]
    assert [e["id"] for e in listed] == [event.id]


def test_ack_path_is_a_handful_of_queries(
    api, merchant, xendit_account, xendit_fake, django_assert_max_num_queries
):
    payment = new_payment(api, merchant, gateway="xendit")
    body = xendit_callback(payment)

    # account lookup, savepoint, INSERT … ON CONFLICT DO NOTHING RETURNING, defer job, release savepoint
    with django_assert_max_num_queries(5) as captured:
        response = post_webhook("xendit", xendit_account.id, body, **xendit_headers())

    assert response.status_code == 200
    assert any("ON CONFLICT" in q["sql"] for q in captured.captured_queries)
