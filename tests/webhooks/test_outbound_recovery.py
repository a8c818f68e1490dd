"""Recovery: redeliver command, admin, redelivery replacing a waiting job, and a job whose worker died handed back
by procrastinate's stalled-job retry (paytrust.jobs.retry_stalled_jobs)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from apikeys.models import AuditLog
from paytrust.jobs import defer_in_transaction
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.jobs_support import job_taken_by_dead_worker, jobs_of
from webhooks.outbound.models import Delivery, DeliveryStatus
from webhooks.outbound.services import deliveries_requeue, event_record
from webhooks.outbound.tasks import OUTBOUND_QUEUE

INVOICE = {"id": "inv_9", "object": "invoice", "status": "paid"}


def _record(merchant, type_="invoice.paid"):
    with transaction.atomic():
        return event_record(merchant=merchant, mode="test", type=type_, data=INVOICE)


def _statuses(event):
    return list(Delivery.objects.filter(event=event).values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
def test_failed_delivery_is_delivered_after_the_redeliver_command(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs, settings
):
    settings.OUTBOUND_WEBHOOK_RETRY_DELAYS = [0]
    webhook_receiver.default_status = 500
    event = _record(merchant)
    run_outbound_jobs(until=lambda: _statuses(event) == ["failed"])
    assert webhook_receiver.count() == 2

    webhook_receiver.default_status = 200
    out = StringIO()
    call_command("redeliver_events", "--failed", stdout=out, stderr=StringIO())
    assert "1 selected, queued 1, skipped 0" in out.getvalue()
    run_outbound_jobs(until=lambda: _statuses(event) == ["succeeded"])

    assert webhook_receiver.count() == 3
    assert webhook_receiver.verified_payloads(receiver_endpoint.secret)[-1]["id"] == event.id
    assert Delivery.objects.get(event=event).attempts.count() == 3


def test_command_filters_and_dry_run_changes_nothing(merchant):
    a = WebhookEndpointFactory(merchant=merchant)
    b = WebhookEndpointFactory(merchant=merchant)
    old = _record(merchant)
    new = _record(merchant)
    Delivery.objects.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    Delivery.objects.filter(event=old).update(created_at=timezone.now() - timedelta(days=3))
    from webhooks.outbound.models import Event

    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    out = StringIO()
    call_command("redeliver_events", "--failed", "--dry-run", stdout=out, stderr=StringIO())
    assert "4 selected, would queue 4" in out.getvalue() and "[dry run]" in out.getvalue()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"failed"}

    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    out = StringIO()
    call_command(
        "redeliver_events", "--failed", "--since", since, "--endpoint", a.id, stdout=out, stderr=StringIO()
    )
    assert "1 selected, queued 1" in out.getvalue()
    assert Delivery.objects.get(event=new, endpoint=a).status == "pending"
    assert Delivery.objects.get(event=new, endpoint=b).status == "failed"
    assert Delivery.objects.get(event=old, endpoint=a).status == "failed"

    out = StringIO()
    call_command("redeliver_events", "--event", old.id, stdout=out, stderr=StringIO())
    assert "2 selected, queued 2" in out.getvalue()
    assert set(Delivery.objects.filter(event=old).values_list("status", flat=True)) == {"pending"}


def test_command_refuses_to_run_without_a_filter():
    with pytest.raises(CommandError):
        call_command("redeliver_events", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("redeliver_events", "--failed", "--since", "yesterday", stdout=StringIO())


def test_redelivery_skips_disabled_endpoints(merchant):
    endpoint = WebhookEndpointFactory(merchant=merchant)
    event = _record(merchant)
    Delivery.objects.update(status=DeliveryStatus.FAILED)
    endpoint.enabled = False
    endpoint.save()
    out = StringIO()
    call_command("redeliver_events", "--failed", stdout=out, stderr=StringIO())
    assert "1 selected, queued 0, skipped 1" in out.getvalue()
    assert _statuses(event) == ["failed"]


@pytest.fixture
def admin_client(db):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


def test_admin_lists_deliveries_with_filters_and_redelivers(admin_client, merchant):
    endpoint = WebhookEndpointFactory(merchant=merchant)
    failed_event = _record(merchant)
    _record(merchant, "invoice.created")
    Delivery.objects.filter(event=failed_event).update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    failed = Delivery.objects.get(event=failed_event)

    page = admin_client.get(
        "/admin/webhooks/delivery/",
        {"status__exact": "failed", "event_type": "invoice.paid", "endpoint__id__exact": endpoint.id},
    )
    assert page.status_code == 200
    content = page.content.decode()
    assert failed.id in content and content.count("whd_") >= 1
    assert Delivery.objects.exclude(pk=failed.pk).get().id not in content
    assert admin_client.get(f"/admin/webhooks/delivery/{quote(failed.id)}/change/").status_code == 200
    assert admin_client.get("/admin/webhooks/event/").status_code == 200
    endpoint_page = admin_client.get(f"/admin/webhooks/webhookendpoint/{quote(endpoint.id)}/change/")
    assert (
        endpoint_page.status_code == 200 and endpoint.secret_encrypted not in endpoint_page.content.decode()
    )

    jobs_before = ProcrastinateJob.objects.count()
    response = admin_client.post(
        "/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [failed.id]}, follow=True
    )
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.cycle_attempts == 0
    assert ProcrastinateJob.objects.count() == jobs_before + 1
    assert AuditLog.objects.filter(
        actor="user:ops", details__action_name="webhooks.delivery_redeliver"
    ).exists()


def test_redelivery_replaces_a_retry_waiting_for_later(merchant):
    WebhookEndpointFactory(merchant=merchant)
    event = _record(merchant)
    delivery = Delivery.objects.get(event=event)
    # a failed attempt left it waiting for its retry in 5 hours
    later = timezone.now() + timedelta(hours=5)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=later, cycle_attempts=4)

    assert deliveries_requeue(delivery_ids=[delivery.id]) == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.cycle_attempts) == ("pending", 0) and delivery.next_attempt_at < later
    assert jobs_of(delivery.id) == ["cancelled", "todo"]  # one live job per delivery, due now


def test_redelivery_skips_a_delivery_whose_job_is_running(merchant):
    WebhookEndpointFactory(merchant=merchant)
    event = _record(merchant)
    delivery = Delivery.objects.get(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    job_taken_by_dead_worker(delivery.id)  # the job is `doing` (its worker died, not yet handed back)

    assert deliveries_requeue(delivery_ids=[delivery.id]) == 0
    assert jobs_of(delivery.id) == ["doing"]


@pytest.mark.django_db(transaction=True)
def test_job_of_a_worker_killed_mid_request_is_handed_back_and_resends(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs
):
    event = _record(merchant)
    delivery = Delivery.objects.get(event=event)
    job_taken_by_dead_worker(delivery.id)
    Delivery.objects.filter(pk=delivery.pk).update(  # it had claimed the delivery and sent the request
        status=DeliveryStatus.SENDING, attempt_count=1, cycle_attempts=1, last_attempt_at=timezone.now()
    )
    run_outbound_jobs()  # a live worker cannot take it: the job is `doing`
    assert webhook_receiver.count() == 0

    with transaction.atomic():
        defer_in_transaction("jobs.retry_stalled_jobs", {"timestamp": 0})
    run_outbound_jobs(
        queues=[OUTBOUND_QUEUE, "housekeeping"], until=lambda: _statuses(event) == ["succeeded"]
    )

    assert webhook_receiver.count() == 1
    attempts = list(delivery.attempts.order_by("id").values_list("succeeded", "error"))
    assert attempts[0][0] is False and attempts[0][1].startswith("attempt interrupted")
    assert attempts[1] == (True, "")
    assert Delivery.objects.get(pk=delivery.pk).attempt_count == 2
    assert jobs_of(delivery.id) == ["succeeded"]  # the same job ran again
