"""Real concurrency (threads, own connections, transaction=True): 20 copies of one delivery at once, and several
workers processing one event at once."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

import threading

import pytest
from django.db import connection

from invoices.models import PaymentApplication
from payments.models import Payment
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    _fresh_breakers,
    merchant,
    new_payment,
    post_webhook,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification
from webhooks.inbound.services import inbound_event_process
from webhooks.outbound.models import Event

N = 20


def _concurrently(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = fn()
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _jobs_for(event_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'webhooks.process_inbound_event' "
            "AND args->>'event_id' = %s",
            [event_id],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_deliveries_store_one_event_and_make_one_state_change(
    api, merchant, xendit_account, xendit_fake
):
    payment = new_payment(api, merchant, gateway="xendit")
    body = xendit_callback(payment)

    responses = _concurrently(N, lambda: post_webhook("xendit", xendit_account.id, body, **xendit_headers()))

    assert all(not isinstance(r, Exception) for r in responses), responses
    assert [r.status_code for r in responses] == [200] * N
    acks = [r.json() for r in responses]
    assert sum(1 for ack in acks if not ack["duplicate"]) == 1
    event = InboundNotification.objects.get()
    assert _jobs_for(event.id) == 1

    # Several workers picking the same event at once (a duplicate job, a sweeper re-queue): one state change.
    outcomes = _concurrently(5, lambda: inbound_event_process(event_id=event.id))

    assert outcomes.count("processed") == 1, outcomes
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert PaymentApplication.objects.filter(payment_id=payment.id).count() == 1
    assert Event.objects.filter(type="payment.succeeded").count() == 1
    assert Payment.objects.get(pk=payment.pk).amount_received_minor == payment.amount_minor
