"""Money that arrives on a void or expired invoice is recorded, flagged for finance staff (admin filter) and told
to the merchant (`payment.received_on_closed_invoice`) — never silently counted as ordinary overpayment
(issue 11 point 1). Money paid before the lapse but reported after it is an ordinary payment (ADR 0025) and is
not flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from invoices.models import Invoice
from payments.models import Payment
from payments.services import invoices_expire_overdue

# ruff: noqa: F811 - pytest fixtures imported by name
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    merchant,
    new_payment,
    post_webhook,
    process_all,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification
from webhooks.inbound.services import inbound_event_replay
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def _flag_events(payment_id: str) -> list[Event]:
    return [
        event
        for event in Event.objects.filter(type="payment.received_on_closed_invoice")
        if event.data["id"] == payment_id
    ]


def test_a_payment_arriving_after_the_void_is_recorded_flagged_and_announced(
    api, merchant, xendit_account, xendit_fake, admin_client
):
    payment = new_payment(api, merchant, gateway="xendit")
    assert api.post(f"/v1/invoices/{payment.invoice_id}/void", {}, format="json").status_code == 200
    payment.refresh_from_db()
    xendit_fake.mark_paid(payment.gateway_reference)  # the customer paid a moment before Xendit expired it

    body = xendit_callback(payment)
    assert post_webhook("xendit", xendit_account.pk, body, **xendit_headers()).status_code == 200
    process_all()
    notification = InboundNotification.objects.get(payment_id=payment.id)
    inbound_event_replay(event_id=notification.pk)  # an operator replays it: processed again, changes nothing
    assert (
        process_all() == ["already_processed"]
        or InboundNotification.objects.get(pk=notification.pk).status == "processed"
    )

    payment.refresh_from_db()
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    assert payment.status == "succeeded" and payment.amount_received_minor == payment.amount_minor
    assert payment.received_on_closed_invoice is True
    assert invoice.status == "void" and invoice.overpaid_minor == payment.amount_minor
    events = _flag_events(payment.id)
    assert len(events) == 1 and events[0].data["received_on_closed_invoice"] is True
    succeeded = [e for e in Event.objects.filter(type="payment.succeeded") if e.data["id"] == payment.id]
    assert len(succeeded) == 1 and succeeded[0].data["received_on_closed_invoice"] is True  # says so too
    assert api.get(f"/v1/payments/{payment.id}").json()["received_on_closed_invoice"] is True

    listed = admin_client.get("/admin/payments/payment/", {"received_on_closed_invoice__exact": "1"})
    assert listed.status_code == 200 and payment.id in listed.content.decode()
    other = admin_client.get("/admin/payments/payment/", {"received_on_closed_invoice__exact": "0"})
    assert payment.id not in other.content.decode()


def test_a_payment_paid_after_the_lapse_of_an_expired_invoice_is_flagged(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    lapsed = timezone.now() - timedelta(minutes=5)
    Invoice.objects.filter(pk=payment.invoice_id).update(expires_at=lapsed, lapses_at=lapsed)  # time passes
    assert invoices_expire_overdue() == 1  # the expiry job runs

    body = xendit_callback(payment, at=timezone.now())  # paid now: after the lapse
    assert post_webhook("xendit", xendit_account.pk, body, **xendit_headers()).status_code == 200
    process_all()

    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.received_on_closed_invoice is True
    assert Invoice.objects.get(pk=payment.invoice_id).status == "expired"
    assert len(_flag_events(payment.id)) == 1


def test_an_ordinary_payment_is_not_flagged(api, merchant, xendit_account, xendit_fake):
    payment = new_payment(api, merchant, gateway="xendit")
    post_webhook("xendit", xendit_account.pk, xendit_callback(payment), **xendit_headers())
    process_all()
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.received_on_closed_invoice is False
    assert _flag_events(payment.id) == []
    assert Payment.objects.filter(received_on_closed_invoice=True).count() == 0
