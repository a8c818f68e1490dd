"""A void racing a success notification on the same invoice (issue 11 point 2), 50 rounds with real concurrent
connections: processing takes the payment's lock, then the invoice's; the void takes the invoice's open payments'
locks, then the invoice's — one order everywhere (payments/services/__init__.py), so nothing deadlocks. Each round
ends consistent: either the money came first (the void answers 409, the invoice is paid) or the void did (200, the
invoice is void and the money is recorded and flagged as received on a closed invoice). Never a 500."""

# ruff: noqa: F811 - pytest fixtures imported by name

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from invoices.models import Invoice
from payments.models import Payment
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    initiate,
    merchant,
    post_webhook,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification
from webhooks.inbound.services import inbound_event_process

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 50


def _deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _race(key: str, invoice_id: str, notification_id: str, *, void_delay: float) -> dict[str, object]:
    """The void (API) and the notification's processing (what the inbound job runs), started together on their
    own connections; the void a few milliseconds later in some rounds, so both orders happen."""
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def void():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        start.wait(10)
        time.sleep(void_delay)
        try:
            results["void"] = client.post(f"/v1/invoices/{invoice_id}/void", {}, format="json")
        finally:
            connection.close()

    def process():
        start.wait(10)
        try:
            results["process"] = inbound_event_process(event_id=notification_id)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted by the caller
            results["process"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=void), threading.Thread(target=process)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_void_racing_a_success_notification_never_deadlocks_and_ends_consistent(
    api, api_key, merchant, xendit_account, xendit_fake, no_jobs
):
    deadlocks_before = _deadlocks()
    outcomes = {"void_won": 0, "money_won": 0}
    for round_number in range(ROUNDS):
        invoice = make_invoice(merchant, gateway="xendit", customer_email=f"payer{round_number}@example.com")
        payment = Payment.objects.get(pk=initiate(api, invoice.id)["id"])
        stored = post_webhook("xendit", xendit_account.pk, xendit_callback(payment), **xendit_headers())
        assert stored.status_code == 200
        notification = InboundNotification.objects.get(pk=stored.json()["id"])
        results = _race(api_key[1], invoice.id, notification.pk, void_delay=(round_number % 10) * 0.004)

        response = results["void"]
        assert response.status_code in (200, 409), (round_number, response.status_code, response.content)
        assert not isinstance(results["process"], Exception), (round_number, repr(results["process"]))
        notification.refresh_from_db()
        payment.refresh_from_db()
        invoice.refresh_from_db()
        assert notification.status == "processed", (round_number, notification.last_error)
        assert payment.status == "succeeded" and payment.amount_received_minor == payment.amount_minor
        if response.status_code == 200:
            outcomes["void_won"] += 1
            assert invoice.status == "void" and payment.received_on_closed_invoice, round_number
            assert invoice.overpaid_minor == payment.amount_received_minor
        else:
            outcomes["money_won"] += 1
            assert response.json()["error"]["code"] in ("invoice_not_voidable", "payment_in_progress")
            assert invoice.status == "paid" and not payment.received_on_closed_invoice, round_number
        assert Invoice.objects.filter(pk=invoice.id, status__in=["paid", "void"]).exists()

    time.sleep(1.5)  # the server's statistics (deadlocks counted by the backends above, now closed)
    assert _deadlocks() == deadlocks_before
    print(f"race outcomes over {ROUNDS} rounds: {outcomes}")
