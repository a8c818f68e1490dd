import pytest
from django.db import transaction
from procrastinate.contrib.django.models import ProcrastinateJob

from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Delivery, Event
from webhooks.services import event_record

INVOICE = {"id": "inv_123", "object": "invoice", "status": "paid", "amount_due": "150000", "currency": "IDR"}


@pytest.mark.django_db(transaction=True)
def test_event_record_refuses_to_run_outside_a_transaction(merchant):
    with pytest.raises(RuntimeError):
        event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
    assert not Event.objects.exists()


def test_event_record_refuses_unknown_event_types(merchant):
    with pytest.raises(ValueError), transaction.atomic():
        event_record(merchant=merchant, mode="test", type="invoice.exploded", data=INVOICE)


def test_event_creates_one_delivery_and_job_per_matching_enabled_endpoint(merchant):
    all_events = WebhookEndpointFactory(merchant=merchant)
    paid_only = WebhookEndpointFactory(merchant=merchant, enabled_events=["invoice.paid"])
    WebhookEndpointFactory(merchant=merchant, enabled_events=["invoice.created"])
    WebhookEndpointFactory(merchant=merchant, enabled=False)
    WebhookEndpointFactory(merchant=merchant, mode="live", url="https://example.com/hook")
    WebhookEndpointFactory()  # another merchant
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
    deliveries = Delivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {all_events.id, paid_only.id}
    jobs = ProcrastinateJob.objects.filter(task_name="webhooks.deliver_webhook")
    assert sorted(j.args["delivery_id"] for j in jobs) == sorted(d.id for d in deliveries)
    assert {d.job_id for d in deliveries} == {j.id for j in jobs}
    assert event.id.startswith("evt_") and event.data == INVOICE


@pytest.mark.django_db(transaction=True)
def test_rolled_back_state_change_leaves_no_event_delivery_or_job(merchant):
    WebhookEndpointFactory(merchant=merchant)

    class Boom(Exception):
        pass

    jobs_before = ProcrastinateJob.objects.count()
    with pytest.raises(Boom), transaction.atomic():
        event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
        assert Delivery.objects.count() == 1  # visible inside the transaction
        assert ProcrastinateJob.objects.count() == jobs_before + 1
        raise Boom
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()
    assert ProcrastinateJob.objects.count() == jobs_before
