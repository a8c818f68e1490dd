"""Real concurrent refund requests (threads, each with its own database connection) on one payment: the payment
row lock serialises them, so the refundable amount each sees is exact and no more than was received is ever
refunded."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from gateways.models import SandboxRefund
from payments.models import Refund
from tests.payments.refund_support import paid_sandbox_payment
from tests.payments.test_initiation_concurrency import _concurrently

N = 20


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_refunds_of_60_percent_create_exactly_one(merchant, api_key):
    payment = paid_sandbox_payment(merchant)  # IDR 150,000
    plaintext = api_key[1]

    def refund():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        response = client.post(f"/v1/payments/{payment.id}/refunds", {"amount": "90000"}, format="json")
        return response.status_code, response.json()

    results = _concurrently(N, refund)

    assert all(isinstance(r, tuple) for r in results), results
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [422] * (N - 1), results
    for status, body in results:
        if status == 422:
            assert body["error"]["code"] == "refund_exceeds_available"
    assert list(Refund.objects.filter(payment=payment).values_list("amount_minor", "status")) == [
        (90000, "succeeded")
    ]
    assert SandboxRefund.objects.filter(session__payment_id=payment.id).count() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded_minor) == ("partially_refunded", 90000)
