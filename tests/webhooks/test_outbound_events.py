import pytest
from django.db import transaction
from procrastinate.contrib.django.models import ProcrastinateJob

from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.outbound.models import Delivery, Event
from webhooks.outbound.services import event_record

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
    # This event's jobs (a job committed by another test file earlier on the same xdist worker may be there too):
    # exactly one per delivery, locked by it.
    ours = {d.id for d in deliveries}
    jobs = [
        j
        for j in ProcrastinateJob.objects.filter(task_name="webhooks.deliver_webhook")
        if j.args.get("delivery_id") in ours
    ]
    assert sorted(j.args["delivery_id"] for j in jobs) == sorted(ours)
    assert ours == {j.lock for j in jobs}  # each job is locked by its delivery
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


def test_event_row_and_its_endpoints_are_written_and_read_in_one_statement(
    merchant, django_assert_num_queries
):
    """event_record's pre-built INSERT … + endpoint SELECT (paytrust.sql): the stored row is what the ORM would
    store (DjangoJSONEncoder for the data, timestamps set) and soft-deleted endpoints receive nothing."""
    from datetime import UTC, datetime
    from decimal import Decimal

    kept = WebhookEndpointFactory(merchant=merchant, enabled_events=["invoice.created"])
    WebhookEndpointFactory(merchant=merchant, deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    data = {**INVOICE, "at": datetime(2026, 5, 1, 12, 0, tzinfo=UTC), "rate": Decimal("0.11")}
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.created", data=data)
    stored = Event.objects.get(pk=event.pk)
    assert stored.data == {**INVOICE, "at": "2026-05-01T12:00:00Z", "rate": "0.11"}
    assert (stored.merchant_id, stored.mode, stored.type) == (merchant.id, "test", "invoice.created")
    assert stored.created_at == event.created_at and stored.updated_at is not None
    assert not event._state.adding
    assert [d.endpoint_id for d in Delivery.objects.filter(event=event)] == [kept.id]
    kept.delete()
    with django_assert_num_queries(1), transaction.atomic(savepoint=False):
        event_record(merchant=merchant, mode="test", type="invoice.created", data=INVOICE)
