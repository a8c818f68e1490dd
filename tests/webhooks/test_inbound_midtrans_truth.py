"""Midtrans notifications cannot be relabelled as paid.

The signature covers only order_id + status_code + gross_amount. Layer 1 (receipt): transaction_status/fraud_status
must agree with the signed status_code, else 400 and nothing is stored. Layer 2 (processing): a Midtrans
notification is only a trigger; the worker asks GET /v2/{order_id}/status (the fake Midtrans answers with its own
state of the transaction) and applies that answer; when the status query fails, the attempt fails and is retried.
"""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from gateways.registry import gateway_class, gateway_for_account
from invoices.models import Invoice
from payments.models import Payment
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    _fresh_breakers,
    clean_jobs,
    merchant,
    midtrans_account,
    midtrans_fake,
    midtrans_notification,
    new_payment,
    post_webhook,
    process_all,
    wib,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def _relabelled_as_settlement(body: bytes, **extra) -> bytes:
    """The attacker's edit of a genuine signed notification: every unsigned field rewritten, signature kept."""
    data = json.loads(body)
    data.update(
        {
            "transaction_status": "settlement",
            "fraud_status": "accept",
            "transaction_id": "attacker-1",
            "settlement_time": "2030-01-01 00:00:00",
            **extra,
        }
    )
    return json.dumps(data).encode()


def _status_queries(fake, payment: Payment) -> int:
    return sum(1 for r in fake.requests if (r.method, r.path) == ("GET", f"/v2/{payment.id}/status"))


def _assert_not_paid(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert payment.amount_received_minor == 0
    assert Invoice.objects.get(pk=payment.invoice_id).status == "pending"
    assert not Event.objects.filter(type__in=["payment.succeeded", "invoice.paid"]).exists()


# ---- layer 1: receipt -----------------------------------------------------------------------------------------


def test_pending_notification_relabelled_as_settlement_is_refused_and_nothing_is_stored(
    api, merchant, midtrans_account, midtrans_fake
):
    payment = new_payment(api, merchant, gateway="midtrans")
    # The customer picked a VA: Midtrans sends a signed "201" pending notification.
    midtrans_fake.customer_starts(payment.id)
    genuine = midtrans_notification(payment, transaction_status="pending")

    response = post_webhook("midtrans", midtrans_account.id, _relabelled_as_settlement(genuine))
    process_all()

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_status_mismatch"
    assert response.json()["error"]["param"] == "status_code"
    assert not InboundNotification.objects.exists()
    _assert_not_paid(payment)
    # The genuine notification itself is still accepted.
    assert post_webhook("midtrans", midtrans_account.id, genuine).status_code == 200


@pytest.mark.parametrize(
    ("transaction_status", "relabel"),
    [
        ("pending", {"transaction_status": "capture"}),
        ("expire", {}),  # signed "407"
        ("deny", {"fraud_status": None}),  # signed "202"
        ("cancel", {}),  # signed "202"
    ],
)
def test_non_success_notifications_cannot_become_a_success(
    api, merchant, midtrans_account, midtrans_fake, transaction_status, relabel
):
    payment = new_payment(api, merchant, gateway="midtrans")
    genuine = midtrans_notification(payment, transaction_status=transaction_status)

    response = post_webhook("midtrans", midtrans_account.id, _relabelled_as_settlement(genuine, **relabel))

    assert response.status_code == 400
    assert not InboundNotification.objects.exists()
    _assert_not_paid(payment)


@pytest.mark.parametrize("field", ["settlement_time", "transaction_time"])
def test_out_of_range_midtrans_time_is_a_400_not_a_500(api, merchant, midtrans_account, midtrans_fake, field):
    payment = new_payment(api, merchant, gateway="midtrans")
    data = json.loads(midtrans_notification(payment))
    data.pop("settlement_time")
    data[field] = "0001-01-01 00:00:00"  # 0001-01-01 WIB is before year 1 in UTC

    response = post_webhook("midtrans", midtrans_account.id, json.dumps(data).encode())

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_payload_invalid"
    assert not InboundNotification.objects.exists()


# ---- layer 2: processing applies the gateway's status, not the notification's ----------------------------------


def test_signed_200_notification_relabelled_as_settlement_is_processed_against_the_real_status(
    api, merchant, midtrans_account, midtrans_fake
):
    """Status code "200" is shared by settlement, cancel (API answer), authorize and refunds: the relabel passes
    the status_code check, so only the status query stops it."""
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.customer_starts(payment.id)  # Midtrans' truth: pending, nothing paid
    genuine_200 = midtrans_notification(payment, transaction_status="cancel", status_code="200")

    response = post_webhook("midtrans", midtrans_account.id, _relabelled_as_settlement(genuine_200))
    outcomes = process_all()

    assert response.status_code == 200  # stored: it is a well-formed, signed trigger
    assert outcomes == ["processed"]
    assert _status_queries(midtrans_fake, payment) == 1
    event = InboundNotification.objects.get()
    assert event.notification_status == "succeeded"  # what the notification claimed (display only)
    assert "gateway status pending" in event.outcome
    assert "notification said succeeded" in event.outcome
    _assert_not_paid(payment)


def test_genuine_settlement_pays_with_the_amount_and_time_the_status_query_reports(
    api, merchant, midtrans_account, midtrans_fake
):
    payment = new_payment(api, merchant, gateway="midtrans", amount="154600")
    midtrans_fake.set_status(payment.id, "settlement")
    paid_at = (timezone.now() - timedelta(minutes=3)).replace(microsecond=0)
    midtrans_fake.transactions[payment.id]["settlement_time"] = wib(paid_at)
    # The delivery's unsigned times differ from Midtrans' record: only the status answer's are used.
    body = midtrans_fake.notification(
        payment.id, settlement_time="2031-01-01 00:00:00", transaction_time="2031-01-01 00:00:00"
    )

    response = post_webhook("midtrans", midtrans_account.id, body)
    outcomes = process_all()

    assert (response.status_code, outcomes) == (200, ["processed"])
    status_call = next(r for r in midtrans_fake.requests if r.path == f"/v2/{payment.id}/status")
    assert status_call.method == "GET"
    assert status_call.basic_auth == ("SB-Mid-server-TESTKEY0123456789abcdef", "")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 154600)
    assert payment.succeeded_at == paid_at
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert Event.objects.filter(type="payment.succeeded").count() == 1


def test_notification_saying_pending_applies_a_settlement_the_gateway_already_has(
    api, merchant, midtrans_account, midtrans_fake
):
    """Out of order: the pending notification arrives after the customer paid; the truth is applied."""
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "settlement")

    post_webhook(
        "midtrans", midtrans_account.id, midtrans_notification(payment, transaction_status="pending")
    )
    process_all()

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.amount_received_minor == payment.amount_minor


@pytest.mark.parametrize("behaviour", ["error500", "garbage"])
def test_failed_status_query_fails_the_attempt_and_the_retry_applies_the_truth(
    api, merchant, midtrans_account, midtrans_fake, behaviour
):
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "settlement")
    post_webhook("midtrans", midtrans_account.id, midtrans_notification(payment))
    midtrans_fake.behaviour = behaviour

    first = process_all()

    event = InboundNotification.objects.get()
    assert first == ["retry_scheduled"]
    assert (event.status, event.attempts) == ("received", 1)
    assert event.next_attempt_at > timezone.now()
    attempt = InboundNotificationAttempt.objects.get(notification=event)
    assert attempt.succeeded is False
    assert attempt.error.startswith(("gateway_server_error", "gateway_bad_response"))
    payment.refresh_from_db()
    assert payment.status == "pending"

    midtrans_fake.behaviour = "normal"
    InboundNotification.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    second = process_all()

    assert second == ["processed"]
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert list(
        InboundNotificationAttempt.objects.filter(notification=event).values_list("succeeded", flat=True)
    ) == [
        False,
        True,
    ]


def test_status_query_for_an_order_midtrans_does_not_have_is_retried_not_applied(
    api, merchant, midtrans_account, midtrans_fake
):
    payment = new_payment(api, merchant, gateway="midtrans")  # no Core API transaction: status answers 404

    post_webhook("midtrans", midtrans_account.id, midtrans_notification(payment))
    outcomes = process_all()

    assert outcomes == ["retry_scheduled"]
    assert InboundNotificationAttempt.objects.get().error.startswith("gateway_payment_not_found")
    _assert_not_paid(payment)


@pytest.mark.django_db(transaction=True)
def test_status_query_runs_outside_any_database_transaction(
    api, merchant, midtrans_account, midtrans_fake, clean_jobs, monkeypatch
):
    # (the class through the registry: importing gateways.midtrans.gateway directly first would leave the
    # registry's lazy load with only Midtrans)
    midtrans_gateway = gateway_class("midtrans")
    seen: list[bool] = []
    original = midtrans_gateway.get_status

    def spy(self, **kwargs):
        seen.append(connection.in_atomic_block)
        return original(self, **kwargs)

    monkeypatch.setattr(midtrans_gateway, "get_status", spy)
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "settlement")
    post_webhook("midtrans", midtrans_account.id, midtrans_notification(payment))

    assert process_all() == ["processed"]
    assert seen == [False]
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_contract_flag_midtrans_is_a_trigger_xendit_and_sandbox_are_authoritative(
    merchant, midtrans_account, xendit_account
):
    from tests.payments.factories import sandbox_account

    assert gateway_for_account(midtrans_account).notifications_are_authoritative is False
    assert gateway_for_account(xendit_account).notifications_are_authoritative is True
    assert gateway_for_account(sandbox_account(merchant)).notifications_are_authoritative is True


def test_xendit_callback_is_applied_without_a_status_query(api, merchant, xendit_account, xendit_fake):
    payment = new_payment(api, merchant, gateway="xendit")
    calls_before = len(xendit_fake.requests)

    post_webhook("xendit", xendit_account.id, xendit_callback(payment), **xendit_headers())
    assert process_all() == ["processed"]

    assert len(xendit_fake.requests) == calls_before
    payment.refresh_from_db()
    assert payment.status == "succeeded"
