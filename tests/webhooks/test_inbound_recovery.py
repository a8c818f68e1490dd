"""Processing failures: retries on the 1/5/30-minute schedule, `failed` after that, the failed list, replay from
the API / manage.py / admin, and recovery of events whose job or worker was lost."""

# Fixtures are imported from tests.webhooks.inbound_support (tests/webhooks/conftest.py is the outbound side's).
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from invoices.models import Invoice
from payments.models import Payment
from tests.factories import MerchantFactory, make_api_key
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
from webhooks.inbound import services as inbound
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt
from webhooks.outbound.models import Event


class InjectedFault(Exception):
    pass


@pytest.fixture
def fault(monkeypatch):
    """`fault.remaining = n` makes the next n processing attempts raise; `fault.remaining = -1` every one."""

    class Fault:
        remaining = 0
        raised = 0

        def __call__(self, event):
            if self.remaining:
                self.remaining -= 1 if self.remaining > 0 else 0
                self.raised += 1
                raise InjectedFault("injected fault: database hiccup")

    hook = Fault()
    monkeypatch.setattr(inbound, "PROCESSING_FAULT_HOOK", hook)
    return hook


def _deliver(api, merchant, account) -> tuple[Payment, InboundNotification]:
    payment = new_payment(api, merchant, gateway="xendit")
    response = post_webhook("xendit", account.id, xendit_callback(payment), **xendit_headers())
    assert response.status_code == 200
    return payment, InboundNotification.objects.get(pk=response.json()["id"])


def _inbound_jobs(event_id: str, status: str | None = None) -> int:
    sql = (
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'webhooks.process_inbound_event' "
        "AND args->>'event_id' = %s"
    )
    params = [event_id]
    if status:
        sql += " AND status = %s"
        params.append(status)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_processing_fails_twice_then_succeeds_on_the_third_attempt(
    api, merchant, xendit_account, xendit_fake, clean_jobs, fault, settings
):
    settings.INBOUND_WEBHOOK_RETRY_DELAYS = [0, 0, 0]
    fault.remaining = 2
    payment, event = _deliver(api, merchant, xendit_account)

    run_inbound_worker(until=lambda: InboundNotification.objects.get(pk=event.pk).status == "processed")

    attempts = list(InboundNotificationAttempt.objects.filter(notification=event).order_by("number"))
    assert [(a.number, a.succeeded) for a in attempts] == [(1, False), (2, False), (3, True)]
    assert all("injected fault" in a.error for a in attempts[:2])
    assert all(a.finished_at is not None for a in attempts)
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert Event.objects.filter(type="payment.succeeded").count() == 1


@pytest.mark.django_db(transaction=True)
def test_always_failing_event_ends_failed_is_listed_and_replay_command_processes_it(
    api, merchant, xendit_account, xendit_fake, clean_jobs, fault, settings, client_for
):
    settings.INBOUND_WEBHOOK_RETRY_DELAYS = [0, 0, 0]
    fault.remaining = -1
    payment, event = _deliver(api, merchant, xendit_account)

    run_inbound_worker(until=lambda: InboundNotification.objects.get(pk=event.pk).status == "failed")

    event.refresh_from_db()
    assert event.attempts == 4  # the first try and three retries
    assert InboundNotificationAttempt.objects.filter(notification=event, succeeded=False).count() == 4
    assert "injected fault" in event.last_error
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    # The merchant sees it in its failed list; another merchant does not; an admin key sees every merchant's.
    listed = api.get("/v1/webhooks/failed").json()["data"]
    assert [e["id"] for e in listed] == [event.id]
    assert len(listed[0]["attempt_log"]) == 4
    _, other_key = make_api_key(MerchantFactory())
    assert client_for(other_key).get("/v1/webhooks/failed").json()["data"] == []
    _, admin_key = make_api_key(MerchantFactory(), scopes=["admin"])
    assert [e["id"] for e in client_for(admin_key).get("/v1/webhooks/failed").json()["data"]] == [event.id]

    fault.remaining = 0  # the fault is fixed
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
    fault.remaining = -1
    _, event = _deliver(api, merchant, xendit_account)
    delays = []
    for _ in range(4):
        InboundNotification.objects.filter(pk=event.pk).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        outcome = inbound.inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        if event.next_attempt_at:
            started = (
                InboundNotificationAttempt.objects.filter(notification=event)
                .order_by("-number")
                .first()
                .finished_at
            )
            delays.append(round((event.next_attempt_at - started).total_seconds()))

    assert delays == [60, 300, 1800]  # settings.INBOUND_WEBHOOK_RETRY_DELAYS
    assert outcome == "failed" and event.status == "failed"
    # Not due yet means nothing happens (a duplicate or early job is a no-op).
    inbound.inbound_event_replay(event_id=event.pk)
    InboundNotification.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert inbound.inbound_event_process(event_id=event.pk) == "not_due"


@pytest.mark.django_db
def test_worker_killed_mid_processing_is_recovered_by_the_sweeper(
    api, merchant, xendit_account, xendit_fake, settings
):
    settings.INBOUND_WEBHOOK_RETRY_DELAYS = [0, 0, 0]
    payment, event = _deliver(api, merchant, xendit_account)
    claim = inbound._claim(event.pk, timezone.now())  # a worker claimed it … and died before finishing
    assert isinstance(claim, inbound._Claim)
    assert inbound.inbound_event_process(event_id=event.pk) == "in_progress"  # its lease still runs
    jobs_before = _inbound_jobs(event.pk)

    later = timezone.now() + inbound._processing_lease() + timedelta(seconds=1)
    assert inbound.inbound_events_sweep(now=later) == 1
    assert _inbound_jobs(event.pk) == jobs_before + 1
    InboundNotification.objects.filter(pk=event.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert inbound.inbound_event_process(event_id=event.pk) == "processed"

    attempts = list(InboundNotificationAttempt.objects.filter(notification=event).order_by("number"))
    assert [(a.number, a.succeeded) for a in attempts] == [(1, False), (2, True)]
    assert "interrupted" in attempts[0].error
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


@pytest.mark.django_db
def test_sweeper_requeues_an_event_whose_job_was_lost(api, merchant, xendit_account, xendit_fake):
    _, event = _deliver(api, merchant, xendit_account)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE args->>'event_id' = %s", [event.pk])
    assert inbound.inbound_events_sweep() == 0  # just received: its job may simply not have run yet

    assert inbound.inbound_events_sweep(now=timezone.now() + timedelta(minutes=2)) == 1
    assert _inbound_jobs(event.pk, "todo") == 1
    assert inbound.inbound_events_sweep(now=timezone.now() + timedelta(minutes=2)) == 0  # not twice
    assert inbound.inbound_event_process(event_id=event.pk) == "processed"


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
    fault.remaining = -1
    _, event = _deliver(api, merchant, xendit_account)
    InboundNotification.objects.filter(pk=event.pk).update(status="failed")

    out = StringIO()
    call_command("replay_webhooks", "--failed", "--gateway", "xendit", "--dry-run", stdout=out)
    assert event.pk in out.getvalue() and "1 event(s) would be replayed" in out.getvalue()
    assert InboundNotification.objects.get(pk=event.pk).status == "failed"

    out = StringIO()
    call_command("replay_webhooks", "--failed", "--gateway", "midtrans", stdout=out, stderr=StringIO())
    assert "replayed 0" in out.getvalue()

    fault.remaining = 0
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
