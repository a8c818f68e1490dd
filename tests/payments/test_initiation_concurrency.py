"""Real concurrent requests (threads, each with its own database connection) initiating payments on one invoice."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from payments.models import Payment
from tests.payments.factories import make_invoice

N = 20


def _concurrently(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = fn()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_initiations_make_exactly_one_gateway_charge(
    merchant, api_key, xendit_account, xendit_fake
):
    xendit_fake.create_delay = 0.3  # the gateway is slow: later requests arrive while the first is initiating
    invoice = make_invoice(merchant, gateway="xendit")
    plaintext = api_key[1]

    def initiate():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        response = client.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")
        return response.status_code, response.json()

    results = _concurrently(N, initiate)

    assert all(isinstance(r, tuple) for r in results), results
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 201, 409}, results
    assert statuses.count(201) == 1
    payment_ids = {body["id"] for status, body in results if status in (200, 201)}
    assert len(payment_ids) == 1
    for status, body in results:
        if status == 409:
            assert body["error"]["code"] == "payment_in_progress"
    assert len(xendit_fake.create_requests()) == 1
    assert Payment.objects.filter(invoice_id=invoice.id).count() == 1
