"""Processing failures: retries by procrastinate on the 1/5/30-minute schedule, `failed` after that, the failed
list, replay from the API / manage.py / admin, and recovery of a job whose worker died (procrastinate's stalled-job
retry, paytrust.jobs.retry_stalled_jobs)."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from invoices.models import Invoice, PaymentApplication
from payments.models import Payment
from paytrust.jobs import RetryLater, defer_in_transaction
from tests.factories import MerchantFactory, make_api_key
from tests.webhooks.inbound_support import (  # noqa: F401 - fixtures
    _fresh_breakers,
    clean_jobs,
    fault,
    merchant,
    new_payment,
    post_webhook,
    run_inbound_worker,
    xendit_account,
    xendit_callback,
    xendit_fake,
    xendit_headers,
)
from tests.webhooks.jobs_support import job_of, job_taken_by_dead_worker
from webhooks.inbound import services as inbound
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt
from webhooks.inbound.tasks import INBOUND_QUEUE
from webhooks.outbound.models import Event


def _deliver(api, merchant, account) -> tuple[Payment, InboundNotification]:
    payment = new_payment(api, merchant, gateway="xendit")
    response = post_webhook("xendit", account.id, xendit_callback(payment), **xendit_headers())
    assert response.status_code == 200
    return payment, InboundNotification.objects.get(pk=response.json()["id"])


@pytest.mark.django_db(transaction=True)
def test_processing_fails_twice_then_succeeds_on_the_third_attempt(
    api, merchant, xendit_account, xendit_fake, clean_jobs, fault, settings
):
    settings.INBOUND_WEBHOOK_RETRY_DELAYS = [0, 0, 0]
    fault.fail(2)
    payment, event = _deliver(api, merchant, xendit_account)

    run_inbound_worker(until=lambda: InboundNotification.objects.get(pk=event.pk).status == "processed")

    attempts = list(InboundNotificationAttempt.objects.filter(notification=event).order_by("number"))
    assert [(a.number, a.succeeded) for a in attempts] == [(1, False), (2, False), (3, True)]
    assert all("injected fault" in a.error for a in attempts[:2])
    assert all(a.finished_at is not None for a in attempts)
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert Event.objects.filter(type="payment.succeeded").count() == 1
    # procrastinate's retry strategy ran the event's one job three times (`attempts` counts finished runs)
    job = job_of(event.pk)
    assert (job["status"], job["attempts"], job["task_name"]) == ("succeeded", 3, inbound.PROCESS_TASK)


@pytest.mark.django_db(transaction=True)
def test_always_failing_event_ends_failed_is_listed_and_replay_command_processes_it(
    api, merchant, xendit_account, xendit_fake, clean_jobs, fault, settings, client_for
):
    settings.INBOUND_WEBHOOK_RETRY_DELAYS = [0, 0, 0]
    fault.fail(-1)
    payment, event = _deliver(api, merchant, xendit_account)

    run_inbound_worker(until=lambda: InboundNotification.objects.get(pk=event.pk).status == "failed")

    event.refresh_from_db()
    assert event.attempts == 4  # the first try and three retries
    assert InboundNotificationAttempt.objects.filter(notification=event, succeeded=False).count() == 4
    assert "injected fault" in event.last_error
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    assert job_of(event.pk)["attempts"] == 4  # four runs of one job, no fifth
    # The merchant sees it in its failed list; another merchant does not; an admin key sees every merchant's.
    listed = api.get("/v1/webhooks/failed").json()["data"]
    assert [e["id"] for e in listed] == [event.id]
    assert len(listed[0]["attempt_log"]) == 4
    _, other_key = make_api_key(MerchantFactory())
    assert client_for(other_key).get("/v1/webhooks/failed").json()["data"] == []
    _, admin_key = make_api_key(MerchantFactory(), scopes=["admin"])
    assert [e["id"] for e in client_for(admin_key).get("/v1/webhooks/failed").json()["data"]] == [event.id]

    fault.fail(0)  # the fault is fixed
    out = StringIO()
    call_command("replay_webhooks", "--id", event.id, stdout=out, stderr=StringIO())
    assert "replayed 1" in out.getvalue()
    run_inbound_worker(until=lambda: InboundNotification.objects.get(pk=event.pk).status == "processed")

    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert InboundNotificationAttempt.objects.filter(notification=event).count() == 5
    assert api.get("/v1/webhooks/failed").json()["data"] == []


@pytest.mark.django_db
def test_retries_follow_the_configured_schedule_then_fail(api, merchant, xendit_account, xendit_fake, fault):
    fault.fail(-1)
    _, event = _deliver(api, merchant, xendit_account)
    delays = []
    for _ in range(3):
        InboundNotification.objects.filter(pk=event.pk).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        with pytest.raises(RetryLater) as retry:
            inbound.inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        assert retry.value.at == event.next_attempt_at and "injected fault" in retry.value.reason
        finished = InboundNotificationAttempt.objects.filter(notification=event).order_by("-number").first()
        delays.append(round((event.next_attempt_at - finished.finished_at).total_seconds()))
    InboundNotification.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    outcome = inbound.inbound_event_process(event_id=event.pk)

    assert delays == [60, 300, 1800]  # settings.INBOUND_WEBHOOK_RETRY_DELAYS
    event.refresh_from_db()
    assert outcome == "failed" and event.status == "failed" and event.next_attempt_at is None
    # Not due yet: nothing happens, the job is to come back at the row's time (a duplicate or early job).
    inbound.inbound_event_replay(event_id=event.pk)
    later = timezone.now() + timedelta(minutes=5)
    InboundNotification.objects.filter(pk=event.pk).update(next_attempt_at=later)
    with pytest.raises(RetryLater) as retry:
        inbound.inbound_event_process(event_id=event.pk)
    assert retry.value.at == later
    assert InboundNotificationAttempt.objects.filter(notification=event).count() == 4


@pytest.mark.django_db(transaction=True)
def test_job_of_a_dead_worker_is_retried_and_the_interrupted_attempt_is_kept(
    api, merchant, xendit_account, xendit_fake, clean_jobs
):
    payment, event = _deliver(api, merchant, xendit_account)
    # A worker took the job, opened the attempt … and was killed (its heartbeat stopped an hour ago).
    job_id = job_taken_by_dead_worker(event.pk)
    assert job_of(event.pk)["id"] == job_id
    inbound._attempt_start(event.pk, timezone.now())
    assert InboundNotification.objects.get(pk=event.pk).status == "processing"
    # A live worker does nothing for it: the job is `doing` and holds the event's lock…
    run_inbound_worker()
    assert InboundNotification.objects.get(pk=event.pk).status == "processing"

    # …until the periodic stalled-job task hands the same job back.
    with transaction.atomic():
        defer_in_transaction("jobs.retry_stalled_jobs", {"timestamp": 0})
    run_inbound_worker(
        queues=[INBOUND_QUEUE, "housekeeping"],
        until=lambda: InboundNotification.objects.get(pk=event.pk).status == "processed",
    )

    attempts = list(InboundNotificationAttempt.objects.filter(notification=event).order_by("number"))
    assert [(a.number, a.succeeded) for a in attempts] == [(1, False), (2, True)]
    assert attempts[0].error.startswith("interrupted") and attempts[0].finished_at is not None
    assert InboundNotification.objects.get(pk=event.pk).attempts == 2
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert PaymentApplication.objects.filter(payment_id=payment.pk).count() == 1
    job = job_of(event.pk)
    assert (job["id"], job["status"], job["attempts"]) == (
        job_id,
        "succeeded",
        2,
    )  # the killed run, then this


@pytest.mark.django_db
def test_an_interrupted_attempt_does_not_use_up_the_retry_schedule(
    api, merchant, xendit_account, xendit_fake, fault, settings
):
    settings.INBOUND_WEBHOOK_RETRY_DELAYS = [60]  # one retry after a failure
    payment, event = _deliver(api, merchant, xendit_account)
    inbound._attempt_start(event.pk, timezone.now())  # a run killed mid-attempt: it changed nothing
    fault.fail(1)

    with pytest.raises(RetryLater) as retry:  # the next run fails: the schedule's first (and only) retry
        inbound.inbound_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("received", 2)
    assert 59 <= (retry.value.at - timezone.now()).total_seconds() <= 60
    InboundNotification.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    assert inbound.inbound_event_process(event_id=event.pk) == "processed"

    attempts = list(InboundNotificationAttempt.objects.filter(notification=event).order_by("number"))
    assert [a.succeeded for a in attempts] == [False, False, True]
    assert attempts[0].error == inbound.INTERRUPTED and "injected fault" in attempts[1].error
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_a_notification_that_kills_its_worker_every_time_ends_failed(
    api, merchant, xendit_account, xendit_fake, clean_jobs, settings
):
    settings.INBOUND_WEBHOOK_RETRY_DELAYS = [0]  # two attempts that fail with an error would end it
    _, event = _deliver(api, merchant, xendit_account)
    runs = inbound.MAX_INTERRUPTED_ATTEMPTS + 1
    for _ in range(runs - 1):  # runs of its job, each killed mid-attempt (the row stays `processing`)
        assert isinstance(inbound._attempt_start(event.pk, timezone.now()), inbound._Attempt)
    assert (
        inbound.inbound_event_process(event_id=event.pk) == "failed"
    )  # the next run: too many interruptions

    event.refresh_from_db()
    assert event.status == "failed" and event.last_error.startswith("interrupted")
    attempts = InboundNotificationAttempt.objects.filter(notification=event)
    assert attempts.count() == inbound.MAX_INTERRUPTED_ATTEMPTS
    assert set(attempts.values_list("succeeded", "error")) == {(False, inbound.INTERRUPTED)}


@pytest.mark.django_db
def test_replay_replaces_the_waiting_job_and_refuses_while_one_runs(
    api, merchant, xendit_account, xendit_fake
):
    _, event = _deliver(api, merchant, xendit_account)
    first = job_of(event.pk)
    InboundNotification.objects.filter(pk=event.pk).update(status="failed")

    inbound.inbound_event_replay(event_id=event.pk)

    assert job_of(event.pk)["status"] == "todo" and job_of(event.pk)["id"] != first["id"]
    from procrastinate.contrib.django.models import ProcrastinateJob

    assert ProcrastinateJob.objects.get(pk=first["id"]).status == "cancelled"  # one live job per event
    job_taken_by_dead_worker(event.pk)  # its job is running (or its worker died, not yet handed back)
    response = api.post(f"/v1/webhooks/{event.pk}/replay")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "webhook_processing"


@pytest.mark.django_db
def test_replay_api_requeues_a_processed_event_without_a_second_state_change(
    api, merchant, xendit_account, xendit_fake, client_for
):
    payment, event = _deliver(api, merchant, xendit_account)
    inbound.inbound_event_process(event_id=event.pk)

    response = api.post(f"/v1/webhooks/{event.pk}/replay")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "received"
    assert inbound.inbound_event_process(event_id=event.pk) == "processed"

    assert Event.objects.filter(type="payment.succeeded").count() == 1
    assert Invoice.objects.get(pk=payment.invoice_id).amount_paid_minor == payment.amount_minor
    assert (
        client_for(make_api_key(MerchantFactory())[1]).post(f"/v1/webhooks/{event.pk}/replay").status_code
        == 404
    )
    assert api.post("/v1/webhooks/whk_doesnotexist/replay").status_code == 404


@pytest.mark.django_db
def test_replay_command_dry_run_and_filters(api, merchant, xendit_account, xendit_fake, fault):
    fault.fail(-1)
    _, event = _deliver(api, merchant, xendit_account)
    InboundNotification.objects.filter(pk=event.pk).update(status="failed")

    out = StringIO()
    call_command("replay_webhooks", "--failed", "--gateway", "xendit", "--dry-run", stdout=out)
    assert event.pk in out.getvalue() and "1 event(s) would be replayed" in out.getvalue()
    assert InboundNotification.objects.get(pk=event.pk).status == "failed"

    out = StringIO()
    call_command("replay_webhooks", "--failed", "--gateway", "midtrans", stdout=out, stderr=StringIO())
    assert "replayed 0" in out.getvalue()

    fault.fail(0)
    out = StringIO()
    call_command(
        "replay_webhooks", "--failed", "--since", "2020-01-01", "--sync", stdout=out, stderr=StringIO()
    )
    assert "replayed 1, skipped 0, processed 1" in out.getvalue()
    assert InboundNotification.objects.get(pk=event.pk).status == "processed"


@pytest.mark.django_db
def test_admin_lists_inbound_events_and_replays_selected(api, merchant, xendit_account, xendit_fake):
    _, event = _deliver(api, merchant, xendit_account)
    InboundNotification.objects.filter(pk=event.pk).update(status="failed", last_error="boom")
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-123456789")
    client = Client()
    client.force_login(user)

    listing = client.get(
        "/admin/inbound/inboundnotification/", {"status__exact": "failed", "gateway": "xendit"}
    )
    assert listing.status_code == 200
    assert event.pk in listing.content.decode()
    detail = client.get(f"/admin/inbound/inboundnotification/{quote(event.pk)}/change/")
    assert detail.status_code == 200 and "[redacted]" in detail.content.decode()

    response = client.post(
        "/admin/inbound/inboundnotification/", {"action": "replay_selected", "_selected_action": [event.pk]}
    )
    assert response.status_code == 302
    assert InboundNotification.objects.get(pk=event.pk).status == "received"
    assert inbound.inbound_event_process(event_id=event.pk) == "processed"
