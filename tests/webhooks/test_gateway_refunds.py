"""Refunds and chargebacks reported by a gateway (issue 11 point 3), through the real inbound endpoint and processing:
Midtrans `partial_refund` / `refund` / `chargeback` / `partial_chargeback` notifications (the worker applies what the
fake Midtrans' status query answers: its cumulative `refund_amount` is the truth) and Xendit refund callbacks (one
refund each, by its `rfd-` id). Each is stored on the payment (`amount_refunded`, status, a Refund row flagged when
a chargeback), counted in the financial report's `refunds`, announced with `refund.succeeded`, and a replay (a
duplicate delivery or a replayed event) changes nothing."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from gateways.base import RefundRequest
from gateways.registry import gateway_for_account
from payments.models import Payment, Refund
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    _fresh_breakers,
    iso_ms,
    merchant,
    midtrans_account,
    midtrans_fake,
    new_payment,
    post_webhook,
    process_all,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification
from webhooks.inbound.services import inbound_event_process, inbound_event_replay
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


# ---- helpers ----------------------------------------------------------------------------------------------------


def _report_refunds(api) -> dict:
    """The financial report of today (UTC) for the calling merchant: {currency: (refunds, net_to_merchant)}."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    body = api.get(
        "/v1/reports/financial",
        {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()},
    ).json()
    return {c["currency"]: (c["refunds"], c["net_to_merchant"]) for c in body["currencies"]}


def _refund_events() -> list[dict]:
    return [e.data for e in Event.objects.filter(type="refund.succeeded").order_by("created_at", "id")]


def _state(payment: Payment) -> tuple[str, int]:
    payment.refresh_from_db()
    return payment.status, payment.amount_refunded_minor


def _replay_everything() -> list[str]:
    """Replay every stored event (the API's / admin's replay) and process it again."""
    outcomes = []
    for pk in InboundNotification.objects.order_by("created_at").values_list("pk", flat=True):
        inbound_event_replay(event_id=pk)
        outcomes.append(inbound_event_process(event_id=pk))
    return outcomes


def _midtrans_paid(api, merchant, midtrans_account, midtrans_fake) -> Payment:
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "settlement")
    assert (
        post_webhook("midtrans", midtrans_account.id, midtrans_fake.notification(payment.id)).status_code
        == 200
    )
    assert process_all() == ["processed"]
    assert _state(payment) == ("succeeded", 0)
    return payment


def _midtrans_dashboard_refund(midtrans_account, payment: Payment, key: str, amount: int) -> None:
    """The merchant refunds in Midtrans: the fake Midtrans' refund API changes its record of the transaction."""
    gateway_for_account(midtrans_account).refund(
        RefundRequest(
            refund_id=key,
            payment_id=payment.id,
            gateway_reference=payment.id,
            amount_minor=amount,
            currency="IDR",
        )
    )


def _notify_midtrans(midtrans_account, midtrans_fake, payment: Payment) -> None:
    response = post_webhook("midtrans", midtrans_account.id, midtrans_fake.notification(payment.id))
    assert response.status_code == 200


def _xendit_paid(api, merchant, xendit_account) -> Payment:
    payment = new_payment(api, merchant, gateway="xendit")
    post_webhook("xendit", xendit_account.id, xendit_callback(payment), **xendit_headers())
    assert process_all() == ["processed"]
    assert _state(payment) == ("succeeded", 0)
    return payment


def xendit_refund_callback(
    payment: Payment, *, refund_id: str, amount: int, status: str = "SUCCEEDED"
) -> bytes:
    """A Xendit refund callback (XPY docs/refund/RefundCallback.md + RefundCallbackData.md; docs.xendit.co
    "Refund webhook notification") for a refund of our payment's Xendit invoice."""
    now = iso_ms(timezone.now())
    return json.dumps(
        {
            "event": "refund.succeeded" if status == "SUCCEEDED" else "refund.failed",
            "business_id": "5f27a14a9bf05c73dd040bc8",
            "created": now,
            "data": {
                "id": refund_id,
                "payment_id": "py-3cd658ae-25b9-4659-aa36-596ae41a809f",
                "invoice_id": payment.gateway_reference,
                "amount": amount,
                "payment_method_type": "DIRECT_DEBIT",
                "channel_code": "BCA",
                "currency": payment.currency,
                "status": status,
                "reason": "REQUESTED_BY_CUSTOMER",
                "reference_id": "b2756a1e-e6cd-4352-9a68-0483aa2b6a2",
                "failure_code": None if status == "SUCCEEDED" else "INSUFFICIENT_BALANCE",
                "refund_fee_amount": None,
                "created": now,
                "updated": now,
                "metadata": None,
            },
        }
    ).encode()


# ---- Midtrans ---------------------------------------------------------------------------------------------------


def test_midtrans_partial_refund_then_refund_are_recorded_once_each(
    api, merchant, midtrans_account, midtrans_fake
):
    payment = _midtrans_paid(api, merchant, midtrans_account, midtrans_fake)

    _midtrans_dashboard_refund(midtrans_account, payment, "dash-1", 50000)
    _notify_midtrans(midtrans_account, midtrans_fake, payment)  # transaction_status partial_refund
    assert process_all() == ["already_processed", "processed"]

    assert _state(payment) == ("partially_refunded", 50000)
    body = api.get(f"/v1/payments/{payment.id}").json()
    assert (body["status"], body["amount_received"], body["amount_refunded"]) == (
        "partially_refunded",
        "150000",
        "50000",
    )
    assert _report_refunds(api) == {"IDR": ("50000", "100000")}
    [event] = _refund_events()
    assert (event["object"], event["amount"], event["currency"], event["dispute"]) == (
        "refund",
        "50000",
        "IDR",
        False,
    )
    assert (event["origin"], event["status"]) == ("gateway", "succeeded")
    assert event["id"] == Refund.objects.get().id and event["id"].startswith("ref_")
    assert (event["payment"], event["invoice"]) == (payment.id, payment.invoice_id)

    # The same notification again (Midtrans retries) is a duplicate; replaying every event changes nothing.
    assert (
        post_webhook("midtrans", midtrans_account.id, midtrans_fake.notification(payment.id)).status_code
        == 200
    )
    assert _replay_everything() == ["processed", "processed"]
    assert _state(payment) == ("partially_refunded", 50000)
    assert len(_refund_events()) == 1 and Refund.objects.count() == 1

    _midtrans_dashboard_refund(midtrans_account, payment, "dash-2", 100000)
    _notify_midtrans(
        midtrans_account, midtrans_fake, payment
    )  # transaction_status refund, refund_amount 150000
    process_all()

    assert _state(payment) == ("refunded", 150000)
    assert [e["amount"] for e in _refund_events()] == ["50000", "100000"]
    assert _report_refunds(api) == {"IDR": ("150000", "0")}
    assert _replay_everything() == ["processed", "processed", "processed"]
    assert _state(payment) == ("refunded", 150000) and len(_refund_events()) == 2


def test_midtrans_full_refund_refunds_everything_received(api, merchant, midtrans_account, midtrans_fake):
    payment = _midtrans_paid(api, merchant, midtrans_account, midtrans_fake)

    _midtrans_dashboard_refund(midtrans_account, payment, "dash-all", 150000)
    _notify_midtrans(midtrans_account, midtrans_fake, payment)
    process_all()

    assert _state(payment) == ("refunded", 150000)
    assert [(e["amount"], e["payment"]) for e in _refund_events()] == [("150000", payment.id)]
    assert _report_refunds(api) == {"IDR": ("150000", "0")}


def test_midtrans_chargeback_is_a_refund_flagged_as_a_dispute(api, merchant, midtrans_account, midtrans_fake):
    payment = _midtrans_paid(api, merchant, midtrans_account, midtrans_fake)

    midtrans_fake.set_status(payment.id, "chargeback")  # the card holder's bank took the whole amount back
    _notify_midtrans(midtrans_account, midtrans_fake, payment)
    process_all()

    assert _state(payment) == ("refunded", 150000)
    refund = Refund.objects.get(payment=payment)
    assert (refund.chargeback, refund.amount_minor, refund.origin) == (True, 150000, "gateway")
    [event] = _refund_events()
    assert (event["dispute"], event["amount"]) == (True, "150000")
    assert _report_refunds(api) == {"IDR": ("150000", "0")}
    _replay_everything()
    assert _state(payment) == ("refunded", 150000) and Refund.objects.count() == 1


def test_midtrans_partial_chargeback_records_the_reported_amount(
    api, merchant, midtrans_account, midtrans_fake
):
    payment = _midtrans_paid(api, merchant, midtrans_account, midtrans_fake)

    midtrans_fake.set_status(payment.id, "partial_chargeback")
    midtrans_fake.transactions[payment.id]["refund_amount"] = "40000.00"
    _notify_midtrans(midtrans_account, midtrans_fake, payment)
    process_all()

    assert _state(payment) == ("partially_refunded", 40000)
    assert [(e["amount"], e["dispute"]) for e in _refund_events()] == [("40000", True)]
    assert _report_refunds(api) == {"IDR": ("40000", "110000")}


def test_midtrans_refund_of_a_payment_whose_settlement_was_missed_records_the_payment_first(
    api, merchant, midtrans_account, midtrans_fake
):
    """Out of order: the first notification processed already finds the transaction refunded at Midtrans."""
    payment = new_payment(api, merchant, gateway="midtrans")
    midtrans_fake.set_status(payment.id, "settlement")
    _midtrans_dashboard_refund(midtrans_account, payment, "dash-1", 30000)

    _notify_midtrans(midtrans_account, midtrans_fake, payment)
    assert process_all() == ["processed"]

    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor, payment.amount_refunded_minor) == (
        "partially_refunded",
        150000,
        30000,
    )
    assert api.get(f"/v1/invoices/{payment.invoice_id}").json()["status"] == "paid"
    types = list(Event.objects.order_by("created_at", "id").values_list("type", flat=True))
    assert types.index("payment.succeeded") < types.index("refund.succeeded")


# ---- Xendit -----------------------------------------------------------------------------------------------------


def test_xendit_refund_callbacks_are_recorded_once_per_refund(api, merchant, xendit_account, xendit_fake):
    payment = _xendit_paid(api, merchant, xendit_account)
    first = xendit_refund_callback(
        payment, refund_id="rfd-6f4a377d-a201-437f-9119-f8b00cbbe857", amount=50000
    )

    assert post_webhook("xendit", xendit_account.id, first, **xendit_headers()).status_code == 200
    assert (
        post_webhook("xendit", xendit_account.id, first, **xendit_headers()).status_code == 200
    )  # duplicate
    assert process_all() == ["already_processed", "processed"]

    assert _state(payment) == ("partially_refunded", 50000)
    event = InboundNotification.objects.get(gateway_event_id__startswith="refund:")
    assert event.payment_id == payment.id  # found by the Xendit invoice id: the callback does not echo ours
    [data] = _refund_events()
    assert (data["amount"], data["dispute"]) == ("50000", False)
    assert data["gateway_reference"] == "rfd-6f4a377d-a201-437f-9119-f8b00cbbe857"
    assert _report_refunds(api) == {"IDR": ("50000", "100000")}

    second = xendit_refund_callback(
        payment, refund_id="rfd-0b6a8c1e-5d7f-4a52-9e43-1f2c3d4e5f60", amount=100000
    )
    post_webhook("xendit", xendit_account.id, second, **xendit_headers())
    process_all()

    assert _state(payment) == ("refunded", 150000)
    assert [e["amount"] for e in _refund_events()] == ["50000", "100000"]
    assert _report_refunds(api) == {"IDR": ("150000", "0")}
    assert set(_replay_everything()) == {"processed"}
    assert _state(payment) == ("refunded", 150000) and len(_refund_events()) == 2


def test_xendit_refund_above_what_was_received_is_refused(api, merchant, xendit_account, xendit_fake):
    payment = _xendit_paid(api, merchant, xendit_account)
    post_webhook(
        "xendit",
        xendit_account.id,
        xendit_refund_callback(payment, refund_id="rfd-1", amount=100000),
        **xendit_headers(),
    )
    process_all()

    post_webhook(
        "xendit",
        xendit_account.id,
        xendit_refund_callback(payment, refund_id="rfd-2", amount=60000),
        **xendit_headers(),
    )
    process_all()

    assert _state(payment) == ("partially_refunded", 100000)
    refused = InboundNotification.objects.get(gateway_event_id="refund:rfd-2:SUCCEEDED")
    assert refused.status != "processed" and "refund_exceeds_received" in refused.last_error
    assert len(_refund_events()) == 1


def test_xendit_refund_callback_before_the_paid_callback_is_applied_once_the_payment_succeeded(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    post_webhook(
        "xendit",
        xendit_account.id,
        xendit_refund_callback(payment, refund_id="rfd-early", amount=20000),
        **xendit_headers(),
    )
    assert process_all() == ["retry_scheduled"]
    early = InboundNotification.objects.get()
    assert "refund_before_success" in early.last_error
    assert _state(payment) == ("pending", 0)

    post_webhook("xendit", xendit_account.id, xendit_callback(payment), **xendit_headers())
    process_all()  # the PAID callback (the refund's retry is not due yet)
    InboundNotification.objects.filter(pk=early.pk).update(next_attempt_at=timezone.now())  # its retry is due
    assert inbound_event_process(event_id=early.pk) == "processed"

    assert _state(payment) == ("partially_refunded", 20000)
    assert len(_refund_events()) == 1


def test_xendit_failed_refund_changes_nothing(api, merchant, xendit_account, xendit_fake):
    payment = _xendit_paid(api, merchant, xendit_account)

    post_webhook(
        "xendit",
        xendit_account.id,
        xendit_refund_callback(payment, refund_id="rfd-failed", amount=50000, status="FAILED"),
        **xendit_headers(),
    )
    process_all()

    assert _state(payment) == ("succeeded", 0)
    assert InboundNotification.objects.get(gateway_event_id="refund:rfd-failed:FAILED").status == "processed"
    assert _refund_events() == []
