"""Real concurrency (threads, own connections, transaction=True): 20 copies of one delivery at once, duplicate
jobs of one event on a worker running five at once, and two runs racing outside the job lock."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from invoices.models import PaymentApplication
from payments.models import Payment
from paytrust.jobs import defer_in_transaction
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    _fresh_breakers,
    clean_jobs,
    merchant,
    new_payment,
    post_webhook,
    run_inbound_worker,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt
from webhooks.inbound.services import PROCESS_TASK, inbound_event_process
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
    api, merchant, xendit_account, xendit_fake, clean_jobs
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

    # Duplicate jobs of the event (the API, the admin and a retry all deferring one) on a worker running five jobs
    # at once: their lock (the event id) lets one run at a time, and the later ones find it processed.
    with transaction.atomic():
        defer_in_transaction(PROCESS_TASK, *[{"event_id": event.id}] * 4, locks=[event.id] * 4)
    run_inbound_worker(concurrency=5)

    assert InboundNotification.objects.get(pk=event.pk).status == "processed"
    assert InboundNotificationAttempt.objects.filter(notification=event).count() == 1  # no run overlapped it
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert PaymentApplication.objects.filter(payment_id=payment.id).count() == 1
    assert Event.objects.filter(type="payment.succeeded").count() == 1
    assert Payment.objects.get(pk=payment.pk).amount_received_minor == payment.amount_minor


@pytest.mark.django_db(transaction=True)
def test_two_runs_racing_outside_the_job_lock_apply_the_payment_once(
    api, merchant, xendit_account, xendit_fake
):
    """E.g. a run presumed dead (its heartbeat stalled) that was still alive beside its retried job: the processing
    transaction locks the row and checks the status and the attempt number, so one of them applies it."""
    payment = new_payment(api, merchant, gateway="xendit")
    post_webhook("xendit", xendit_account.id, xendit_callback(payment), **xendit_headers())
    event = InboundNotification.objects.get()

    outcomes = _concurrently(2, lambda: inbound_event_process(event_id=event.id))

    assert outcomes.count("processed") == 1, outcomes
    assert set(outcomes) <= {"processed", "superseded", "already_processed"}, outcomes
    assert PaymentApplication.objects.filter(payment_id=payment.id).count() == 1
    assert Event.objects.filter(type="payment.succeeded").count() == 1
