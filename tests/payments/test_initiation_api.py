"""POST /v1/invoices/{id}/payments, GET /v1/payments[/{id}] against the sandbox and the local fake Xendit/Midtrans."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gateways.models import SandboxCheckoutSession
from payments.models import GatewayCall, Payment
from tests.factories import make_api_key
from tests.payments.conftest import XENDIT_SECRET
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


def _initiate(api, invoice_id, body=None, **headers):
    return api.post(f"/v1/invoices/{invoice_id}/payments", body or {}, format="json", **headers)


def test_sandbox_initiation_returns_201_with_checkout_url_and_full_amount(api, merchant):
    invoice = make_invoice(merchant, amount="150000")

    response = _initiate(api, invoice.id)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("pay_")
    assert body["status"] == "pending"
    assert body["amount"] == "150000"
    assert body["currency"] == "IDR"
    assert body["installment"] == 1
    assert body["gateway"] == "sandbox"
    assert "/sandbox/checkout/" in body["payment_url"]
    assert body["gateway_reference"].startswith("ckt_")
    assert body["iso20022_status"] == "ACSP"
    session = SandboxCheckoutSession.objects.get(payment_id=body["id"])
    assert session.amount_minor == 150000
    call = GatewayCall.objects.get(payment_id=body["id"])
    assert (call.operation, call.outcome) == ("create_payment", "ok")
    # The invoice shows the payment and is now pending.
    invoice_body = api.get(f"/v1/invoices/{invoice.id}").json()
    assert invoice_body["status"] == "pending"
    assert [p["id"] for p in invoice_body["payments"]] == [body["id"]]


def test_second_initiation_while_payment_open_returns_same_payment_200(api, merchant):
    invoice = make_invoice(merchant)
    first = _initiate(api, invoice.id)
    second = _initiate(api, invoice.id)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert SandboxCheckoutSession.objects.filter(invoice_id=invoice.id).count() == 1


def test_xendit_initiation_uses_payment_id_as_external_id_and_idempotency_key(
    api, merchant, xendit_account, xendit_fake
):
    invoice = make_invoice(merchant, gateway="xendit", amount="250000")

    response = _initiate(api, invoice.id)

    assert response.status_code == 201, response.content
    body = response.json()
    (create,) = xendit_fake.create_requests()
    assert create.json["external_id"] == body["id"]
    assert create.header("X-IDEMPOTENCY-KEY") == body["id"]
    assert create.json["amount"] == 250000
    assert body["gateway_reference"] in xendit_fake.invoices
    assert body["payment_url"] == xendit_fake.invoices[body["gateway_reference"]]["invoice_url"]
    # The logged call keeps the gateway's answer but never our secret.
    call = GatewayCall.objects.get(payment_id=body["id"])
    assert call.response["id"] == body["gateway_reference"]
    assert XENDIT_SECRET not in str(call.request) + str(call.response)


def test_midtrans_initiation_creates_snap_with_order_id(api, merchant, midtrans_account, midtrans_fake):
    invoice = make_invoice(merchant, gateway="midtrans", amount="99000")

    response = _initiate(api, invoice.id)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["gateway_reference"] == body["id"]
    assert midtrans_fake.snaps[body["id"]]["body"]["transaction_details"]["gross_amount"] == 99000
    assert body["payment_url"] == midtrans_fake.snaps[body["id"]]["redirect_url"]


def test_gateway_refusal_fails_payment_with_502_and_gateways_message(api, merchant, xendit_account, settings):
    from tests.fakes.xendit import FakeXendit

    with FakeXendit(secret_key="another-secret") as fake:  # our key is refused: 401 INVALID_API_KEY
        settings.XENDIT_API_BASE = fake.base_url
        invoice = make_invoice(merchant, gateway="xendit")
        response = _initiate(api, invoice.id)

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "gateway_error"
    assert "INVALID_API_KEY" in error["message"]
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "failed"
    assert payment.failure_code == "gateway_authentication_failed"
    assert payment.pain002_status == "RJCT"


def test_failed_payment_does_not_block_a_new_initiation(api, merchant, xendit_account, xendit_fake, settings):
    invoice = make_invoice(merchant, gateway="xendit")
    xendit_fake.behaviour = "error500"
    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 100
    first = _initiate(api, invoice.id)
    assert first.status_code == 504  # a 5xx: the gateway may have created it -> unknown
    assert Payment.objects.get(invoice=invoice).status == "unknown"
    # While unknown it stays THE open payment: no second charge.
    again = _initiate(api, invoice.id)
    assert again.status_code == 200 and again.json()["status"] == "unknown"
    Payment.objects.filter(invoice=invoice).update(status="failed", failed_at=timezone.now())
    xendit_fake.behaviour = "normal"
    retry = _initiate(api, invoice.id)
    assert retry.status_code == 201
    assert Payment.objects.filter(invoice=invoice).count() == 2


def test_timeout_leaves_payment_unknown_with_504(api, merchant, xendit_account, xendit_fake, fast_timeout):
    invoice = make_invoice(merchant, gateway="xendit")
    xendit_fake.hang_after_create = True

    response = _initiate(api, invoice.id)

    assert response.status_code == 504
    assert response.json()["error"]["type"] == "gateway_error"
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "unknown"
    assert payment.pain002_status == "PDNG"
    assert GatewayCall.objects.get(payment=payment).outcome == "gateway_timeout"


def test_later_installment_is_refused_409_out_of_order(api, merchant):
    invoice = make_invoice(merchant, amount="300000", installments=3)

    response = _initiate(api, invoice.id, {"installment": 2})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "installment_out_of_order"
    assert not Payment.objects.filter(invoice=invoice).exists()


def test_expired_invoice_is_refused_409(api, merchant):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2), now=timezone.now() - timedelta(hours=3))

    response = _initiate(api, invoice.id)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invoice_expired"
    assert not Payment.objects.filter(invoice=invoice).exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [({"installment": 0}, "installment"), ({"installment": "x"}, "installment"), ({"amount": "1"}, "amount")],
)
def test_bad_body_is_400_with_param(api, merchant, body, param):
    invoice = make_invoice(merchant)
    response = _initiate(api, invoice.id, body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not Payment.objects.exists()


def test_other_merchants_invoice_and_payment_are_404(api, merchant, other_merchant, client_for):
    invoice = make_invoice(merchant)
    payment_id = _initiate(api, invoice.id).json()["id"]
    _, other_key = make_api_key(other_merchant)
    other = client_for(other_key)

    assert _initiate(other, invoice.id).status_code == 404
    assert other.get(f"/v1/payments/{payment_id}").status_code == 404
    assert other.get("/v1/payments").json()["data"] == []
    # Live-mode key of the same merchant does not see test-mode payments either.
    _, live_key = make_api_key(merchant, mode="live")
    assert client_for(live_key).get(f"/v1/payments/{payment_id}").status_code == 404


def test_list_filters_by_status_and_invoice_with_cursor(api, merchant):
    ids = []
    for _ in range(3):
        invoice = make_invoice(merchant)
        ids.append(_initiate(api, invoice.id).json()["id"])
    Payment.objects.filter(pk=ids[0]).update(status="failed")

    page = api.get("/v1/payments", {"limit": 2}).json()
    assert [p["id"] for p in page["data"]] == [ids[2], ids[1]]
    assert page["has_more"] is True
    rest = api.get("/v1/payments", {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [p["id"] for p in rest["data"]] == [ids[0]]
    assert [p["id"] for p in api.get("/v1/payments", {"status": "failed"}).json()["data"]] == [ids[0]]
    invoice_id = Payment.objects.get(pk=ids[1]).invoice_id
    assert [p["id"] for p in api.get("/v1/payments", {"invoice": invoice_id}).json()["data"]] == [ids[1]]
    bad = api.get("/v1/payments", {"status": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


def test_idempotency_key_replays_the_first_response(api, merchant):
    invoice = make_invoice(merchant)
    first = _initiate(api, invoice.id, HTTP_IDEMPOTENCY_KEY="k-1")
    second = _initiate(api, invoice.id, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
