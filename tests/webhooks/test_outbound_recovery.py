"""Recovery: redeliver command, admin, the sweeper that re-triggers deliveries whose jobs were lost."""

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
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.outbound.delivery import deliveries_sweep
from webhooks.outbound.models import Delivery, DeliveryStatus
from webhooks.outbound.services import event_record

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


def test_sweeper_requeues_a_delivery_whose_job_vanished(merchant):
    WebhookEndpointFactory(merchant=merchant)
    event = _record(merchant)
    delivery = Delivery.objects.get(event=event)
    # the job is gone (e.g. deleted, or failed with an exception) and the delivery is overdue
    Delivery.objects.filter(pk=delivery.pk).update(
        job_id=None, next_attempt_at=timezone.now() - timedelta(minutes=2)
    )

    assert deliveries_sweep() == 1
    delivery.refresh_from_db()
    assert delivery.job_id is not None
    job = ProcrastinateJob.objects.get(pk=delivery.job_id)
    assert job.status == "todo" and job.args == {"delivery_id": delivery.id}
    assert deliveries_sweep() == 0  # it has a live job now


def test_sweeper_leaves_deliveries_with_a_queued_job_alone(merchant):
    WebhookEndpointFactory(merchant=merchant)
    event = _record(merchant)
    Delivery.objects.filter(event=event).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    assert deliveries_sweep() == 0


def test_sweeper_resets_a_delivery_stuck_sending_past_its_lease(merchant):
    WebhookEndpointFactory(merchant=merchant)
    event = _record(merchant)
    past = timezone.now() - timedelta(seconds=5)
    Delivery.objects.filter(event=event).update(
        status=DeliveryStatus.SENDING, lease_token="dead", lease_expires_at=past, last_attempt_at=past
    )
    assert deliveries_sweep() == 1
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == "pending" and delivery.lease_token == ""
    assert delivery.attempts.get().error.startswith("attempt interrupted")
    # a sending delivery whose lease is still valid is not touched
    future = timezone.now() + timedelta(seconds=60)
    Delivery.objects.filter(event=event).update(
        status=DeliveryStatus.SENDING, lease_token="x", lease_expires_at=future
    )
    assert deliveries_sweep() == 0
