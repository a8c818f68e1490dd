"""An invoice lists its payments - in the API (retrieve, list, void) and in the `data` of the invoice events the
payments layer drives (invoice.paid, installment.paid, invoice.voided, invoice.expired) - although the invoices
app knows no payment: the payments layer renders them and passes them down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gateways import base as gw
from payments.models import Payment
from payments.selectors import payment_representation
from payments.services import GatewayStatusUpdate, invoices_expire_overdue, payment_apply_gateway_status
from tests.payments.factories import make_invoice
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def _initiate(api, invoice_id) -> str:
    response = api.post(f"/v1/invoices/{invoice_id}/payments", {}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _event_data(event_type: str, invoice_id: str) -> dict:
    (event,) = [e for e in Event.objects.filter(type=event_type) if _invoice_of(e.data)["id"] == invoice_id]
    return event.data


def _invoice_of(data: dict) -> dict:
    return data["invoice"] if data.get("object") == "installment" else data


def _succeed(payment_id: str) -> Payment:
    payment = Payment.objects.get(pk=payment_id)
    outcome = payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=gw.GatewayOutcome.SUCCEEDED,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            occurred_at=timezone.now(),
        ),
        source="test",
    )
    assert outcome.changed
    return outcome.payment


def test_retrieve_and_list_show_each_invoices_payments_oldest_first(api, merchant):
    paid_in_two = make_invoice(merchant, installments=2)
    first = _initiate(api, paid_in_two.id)
    _succeed(first)
    second = _initiate(api, paid_in_two.id)
    without = make_invoice(merchant)

    body = api.get(f"/v1/invoices/{paid_in_two.id}").json()
    listed = {row["id"]: row["payments"] for row in api.get("/v1/invoices").json()["data"]}

    expected = [payment_representation(Payment.objects.get(pk=pk)) for pk in (first, second)]
    assert body["payments"] == expected
    assert [p["status"] for p in body["payments"]] == ["succeeded", "pending"]
    assert listed == {paid_in_two.id: expected, without.id: []}


def test_invoice_paid_and_installment_paid_events_list_the_payment_that_paid(api, merchant):
    invoice = make_invoice(merchant)
    payment_id = _initiate(api, invoice.id)

    payment = _succeed(payment_id)

    for event_type in ("invoice.paid", "installment.paid"):
        listed = _invoice_of(_event_data(event_type, invoice.id))["payments"]
        assert listed == [payment_representation(payment)], event_type
        assert listed[0]["status"] == "succeeded"


def test_invoice_voided_event_lists_the_payments_as_they_were_before_closing(api, merchant):
    invoice = make_invoice(merchant)
    payment_id = _initiate(api, invoice.id)
    before = payment_representation(Payment.objects.get(pk=payment_id))

    response = api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json")

    assert response.status_code == 200
    assert _event_data("invoice.voided", invoice.id)["payments"] == [before]
    closed = payment_representation(Payment.objects.get(pk=payment_id))
    assert closed["expires_at"] != before["expires_at"]  # closed: due for expiry now
    assert response.json()["payments"] == [closed]


def test_invoice_expired_event_lists_the_payments(api, merchant):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    payment_id = _initiate(api, invoice.id)

    assert invoices_expire_overdue(now=timezone.now() + timedelta(hours=3)) == 1

    data = _event_data("invoice.expired", invoice.id)
    assert data["status"] == "expired"
    assert data["payments"] == [payment_representation(Payment.objects.get(pk=payment_id))]
