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


def test_event_deliveries_and_jobs_are_the_rows_the_orm_and_procrastinate_write(merchant):
    """event_sql's deliveries (one statement with the event) are the rows `Delivery.objects.create()` would
    store, and their jobs the rows procrastinate's own deferral (`defer_in_transaction`) would store (inside a
    request's trace they also carry its `_trace`: tests/observability/test_tracing.py)."""
    from paytrust.jobs import defer_in_transaction
    from webhooks.outbound.delivery import DELIVER_TASK

    endpoint = WebhookEndpointFactory(merchant=merchant)
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
        (delivery,) = Delivery.objects.filter(event=event)
        orm = Delivery.objects.create(
            event=event, endpoint=WebhookEndpointFactory(merchant=merchant), next_attempt_at=event.created_at
        )
        (orm_job_id,) = defer_in_transaction(DELIVER_TASK, {"delivery_id": orm.id}, locks=[orm.id])
    skipped = {"id", "endpoint_id", "created_at", "updated_at", "next_attempt_at"}
    columns = [f.attname for f in Delivery._meta.concrete_fields if f.attname not in skipped]
    assert {c: getattr(delivery, c) for c in columns} == {c: getattr(orm, c) for c in columns}
    assert delivery.endpoint_id == endpoint.id and delivery.status == "pending"
    assert delivery.next_attempt_at <= delivery.created_at <= delivery.updated_at  # due now, as the ORM's
    assert abs((delivery.created_at - event.created_at).total_seconds()) < 60
    job = ProcrastinateJob.objects.get(lock=delivery.id)
    orm_job = ProcrastinateJob.objects.get(pk=orm_job_id)
    same = ("queue_name", "task_name", "priority", "queueing_lock", "scheduled_at", "status", "attempts")
    assert {f: getattr(job, f) for f in same} == {f: getattr(orm_job, f) for f in same}
    assert job.args == {**orm_job.args, "delivery_id": delivery.id} == {"delivery_id": delivery.id}


def test_an_event_with_no_endpoint_defers_nothing(merchant, django_assert_num_queries):
    jobs_before = ProcrastinateJob.objects.count()
    with django_assert_num_queries(1), transaction.atomic(savepoint=False):
        event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
    assert ProcrastinateJob.objects.count() == jobs_before and not Delivery.objects.exists()


def test_ids_made_in_sql_have_the_shape_and_order_of_paytrust_ids(db):
    """`paytrust_new_id` (the deliveries' ids, made in the event's statement) against paytrust.ids.new_id:
    prefix, the same time part for the same millisecond, 16 random base62 characters, and every position of
    those uniform over the 62 symbols (a chi-square test per position: using a UUID's fixed version or variant
    bits, or a biased mapping, would put one position far outside)."""
    import re

    from django.db import connection

    from paytrust.ids import _ALPHABET, id_time_ms, new_id, now_ms

    ms = now_ms()
    with connection.cursor() as cursor:
        cursor.execute("SELECT paytrust_new_id('whd', %s::bigint) FROM generate_series(1, 6200)", [ms])
        made = [row[0] for row in cursor.fetchall()]
    python_made = new_id("whd")
    assert all(re.fullmatch(r"whd_[0-9A-Za-z]{24}", value) for value in made)
    assert len(set(made)) == len(made)
    assert {id_time_ms(value) for value in made} == {ms} and id_time_ms(python_made) >= ms
    assert made[0][:12] <= python_made[:12]  # same encoding of the time: sorts before an id made after it
    expected = len(made) / 62  # 100 per symbol and position
    for position in range(12, 28):
        counts = [0] * 62
        for value in made:
            counts[_ALPHABET.index(value[position])] += 1
        chi_square = sum((count - expected) ** 2 / expected for count in counts)
        assert chi_square < 140, (position, chi_square)  # 61 degrees of freedom: mean 61, P(> 140) ~ 1e-8
    with pytest.raises(Exception), transaction.atomic(), connection.cursor() as cursor:  # noqa: B017
        cursor.execute("SELECT paytrust_new_id('wh_d', 0)")
