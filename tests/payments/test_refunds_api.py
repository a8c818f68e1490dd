"""The refund API (SPEC §13): POST /v1/payments/{id}/refunds, GET /v1/refunds (cursor pagination, filters),
GET /v1/refunds/{id}; Idempotency-Key; tenant and mode isolation; and the end-to-end walk on the sandbox: pay an
invoice on the hosted checkout page, refund 30 %, then 70 %, a third refund is 422."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from payments.models import Refund
from tests.factories import make_api_key
from tests.payments.factories import make_invoice
from tests.payments.refund_support import paid_sandbox_payment
from tests.webhooks.inbound_support import process_all

pytestmark = pytest.mark.django_db

REFUND_KEYS = {
    "id",
    "object",
    "mode",
    "status",
    "amount",
    "currency",
    "payment",
    "invoice",
    "reason",
    "metadata",
    "origin",
    "dispute",
    "gateway_reference",
    "failure_code",
    "failure_message",
    "created_at",
    "updated_at",
    "succeeded_at",
}


def _post(api, payment_id: str, body: dict, **headers):
    return api.post(f"/v1/payments/{payment_id}/refunds", body, format="json", **headers)


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_a_refund_is_created_and_rendered(api, merchant):
    payment = paid_sandbox_payment(merchant)

    response = _post(api, payment.id, {"amount": "45000", "reason": "Damaged", "metadata": {"rma": "R-9"}})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == REFUND_KEYS
    assert (body["object"], body["status"], body["amount"], body["currency"]) == (
        "refund",
        "succeeded",
        "45000",
        "IDR",
    )
    assert (body["payment"], body["invoice"], body["origin"], body["dispute"]) == (
        payment.id,
        payment.invoice_id,
        "api",
        False,
    )
    assert (body["reason"], body["metadata"]) == ("Damaged", {"rma": "R-9"})
    assert body["id"].startswith("ref_") and body["gateway_reference"].startswith("sbxref_")
    assert body["succeeded_at"] and body["failure_code"] is None
    assert api.get(f"/v1/refunds/{body['id']}").json() == body
    shown = api.get(f"/v1/payments/{payment.id}").json()
    assert (shown["status"], shown["amount_refunded"]) == ("partially_refunded", "45000")
    assert api.get(f"/v1/invoices/{payment.invoice_id}").json()["amount_refunded"] == "45000"


def test_pending_and_failed_refunds_are_201_with_their_status(api, merchant):
    payment = paid_sandbox_payment(merchant)

    pending = _post(api, payment.id, {"amount": "10042"}).json()
    failed = _post(api, payment.id, {"amount": "10013"}).json()

    assert (pending["status"], pending["succeeded_at"]) == ("pending", None)
    assert (failed["status"], failed["failure_code"], failed["failure_message"]) == (
        "failed",
        "refund_failed",
        "insufficient balance",
    )
    assert api.get(f"/v1/payments/{payment.id}").json()["amount_refunded"] == "0"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": "100", "unknown": 1}, "unknown"),
        ({"amount": "10.5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"reason": 5}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"metadata": {"k": 5}}, "metadata"),
        ({"metadata": "x"}, "metadata"),
    ],
)
def test_bad_bodies_are_400_with_the_param_and_write_nothing(api, merchant, body, param):
    payment = paid_sandbox_payment(merchant)

    assert _error(_post(api, payment.id, body), 400)["param"] == param
    assert not Refund.objects.exists()


def test_errors_of_the_service_reach_the_client_with_their_codes(api, merchant):
    unpaid = make_invoice(merchant)
    pay = api.post(f"/v1/invoices/{unpaid.id}/payments", {}, format="json").json()
    assert _error(_post(api, pay["id"], {}), 409)["code"] == "payment_not_refundable"
    paid = paid_sandbox_payment(merchant)
    error = _error(_post(api, paid.id, {"amount": "150001"}), 422)
    assert (error["code"], error["param"]) == ("refund_exceeds_available", "amount")
    assert _error(_post(api, "pay_nope", {}), 404)["type"] == "invalid_request_error"


def test_another_merchant_or_mode_sees_nothing(api, merchant, other_merchant):
    payment = paid_sandbox_payment(merchant)
    refund = _post(api, payment.id, {"amount": "1000"}).json()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(other_merchant)[1]}")
    live = APIClient()
    live.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(merchant, mode='live')[1]}")

    for client in (other, live):
        assert _error(_post(client, payment.id, {}), 404)
        assert _error(client.get(f"/v1/refunds/{refund['id']}"), 404)
        assert client.get("/v1/refunds").json()["data"] == []
    assert Refund.objects.count() == 1


def test_the_list_is_newest_first_paginated_and_filtered(api, merchant):
    first, second = paid_sandbox_payment(merchant), paid_sandbox_payment(merchant)
    a = _post(api, first.id, {"amount": "1000"}).json()
    b = _post(api, first.id, {"amount": "10042"}).json()
    c = _post(api, second.id, {"amount": "2000"}).json()

    page = api.get("/v1/refunds?limit=2").json()
    assert [r["id"] for r in page["data"]] == [c["id"], b["id"]] and page["has_more"]
    rest = api.get(f"/v1/refunds?limit=2&cursor={page['next_cursor']}").json()
    assert [r["id"] for r in rest["data"]] == [a["id"]] and not rest["has_more"]
    assert [r["id"] for r in api.get(f"/v1/refunds?payment={first.id}").json()["data"]] == [b["id"], a["id"]]
    assert [r["id"] for r in api.get("/v1/refunds?status=pending").json()["data"]] == [b["id"]]
    assert _error(api.get("/v1/refunds?status=done"), 400)["param"] == "status"


def test_idempotency_key_replays_the_refund_and_refunds_once(api, merchant):
    payment = paid_sandbox_payment(merchant)

    first = _post(api, payment.id, {"amount": "5000"}, HTTP_IDEMPOTENCY_KEY="refund-1")
    second = _post(api, payment.id, {"amount": "5000"}, HTTP_IDEMPOTENCY_KEY="refund-1")
    other_body = _post(api, payment.id, {"amount": "6000"}, HTTP_IDEMPOTENCY_KEY="refund-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert _error(other_body, 422)["type"] == "idempotency_error"
    assert Refund.objects.count() == 1


def test_end_to_end_pay_on_the_sandbox_page_then_refund_30_and_70_percent(api, merchant):
    invoice = make_invoice(merchant, amount="150000")
    pay = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()
    page = "/" + pay["payment_url"].split("://", 1)[1].split("/", 1)[1]
    html = Client().get(page).content.decode()
    nonce = html.split('name="nonce" value="', 1)[1].split('"', 1)[0]
    assert Client().post(page, {"nonce": nonce, "action": "pay"}).status_code == 200
    process_all()
    assert api.get(f"/v1/payments/{pay['id']}").json()["status"] == "succeeded"

    thirty = _post(api, pay["id"], {"amount": "45000"})
    seventy = _post(api, pay["id"], {"amount": "105000"})
    third = _post(api, pay["id"], {"amount": "1"})

    assert (thirty.status_code, thirty.json()["status"]) == (201, "succeeded")
    assert (seventy.status_code, seventy.json()["status"]) == (201, "succeeded")
    assert _error(third, 422)["code"] == "refund_exceeds_available"
    shown = api.get(f"/v1/payments/{pay['id']}").json()
    assert (shown["status"], shown["amount_refunded"]) == ("refunded", "150000")
    assert api.get(f"/v1/invoices/{invoice.id}").json()["amount_refunded"] == "150000"
    listed = api.get(f"/v1/refunds?payment={pay['id']}").json()["data"]
    assert [(r["amount"], r["status"]) for r in listed] == [("105000", "succeeded"), ("45000", "succeeded")]
    assert (
        "sbxref_" in Client().get(page).content.decode() or "Refunds" in Client().get(page).content.decode()
    )
