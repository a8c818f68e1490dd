"""invoice_create writes the invoice, its line items, installments and event (with its deliveries and jobs) with
ONE pre-built statement (invoices.services.create.invoice_insert): the stored rows must be exactly what the
returned objects say, as the ORM's save()/bulk_create() would have stored them."""

from datetime import date

import pytest
from django.db import transaction

from invoices.calc import CustomerIn, InstallmentsIn, LineItemIn
from invoices.models import Installment, Invoice, LineItem
from invoices.selectors import invoice_get, invoice_render, invoice_render_created
from invoices.services import invoice_create
from tests.invoices.factories import account_with_fee


def invoice_get_stored(invoice: Invoice) -> Invoice:
    """The invoice as read back from the database with its children (as the API's GET reads it)."""
    return invoice_get(merchant=invoice.merchant, mode=invoice.mode, invoice_id=invoice.pk)


pytestmark = pytest.mark.django_db

FIELDS_SKIPPED = {
    "merchant",
    "gateway_account",
    "parent_invoice",
    "invoice",
}  # compared by their *_id columns


def _columns(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _create(merchant, **overrides):
    kwargs = {
        "merchant": merchant,
        "mode": "test",
        "currency": "IDR",
        "gateway": "xendit",
        "external_id": "rows-1",
        "description": "Order 1",
        "customer": CustomerIn("Budi", "budi@example.com", "+62811"),
        "line_items": [
            LineItemIn("Widget", 2, "150000", "0.11"),
            LineItemIn("Gadget", 1, "99999", "0"),
            LineItemIn("Shipping", 1, "25000", "0.11"),
        ],
        "installments": InstallmentsIn(count=3, amounts=None, due_dates=None),
        "metadata": {"order": "1"},
    }
    kwargs.update(overrides)
    return invoice_create(**kwargs)


def test_stored_rows_are_the_returned_objects(merchant):
    account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.029", fixed_minor=2000)
    invoice = _create(merchant)
    stored = Invoice.objects.get(pk=invoice.pk)
    assert _columns(stored) == _columns(invoice)
    assert stored.fee_percent == invoice.fee_percent and str(stored.fee_percent) == "0.0290"
    assert stored.metadata == {"order": "1"} and stored.installment_plan == invoice.installment_plan
    assert stored.created_at is not None and stored.updated_at >= stored.created_at
    # The children are not kept on the returned invoice; what the API shows of them is the snapshot rendered from
    # the rows as written, which must be what the stored rows render to.
    assert invoice_render_created(invoice) == invoice_render(invoice_get_stored(stored), payments=[])
    lines = list(LineItem.objects.filter(invoice=stored).order_by("position"))
    assert [(x.position, x.name, x.quantity, x.unit_price_minor) for x in lines] == [
        (0, "Widget", 2, 150000),
        (1, "Gadget", 1, 99999),
        (2, "Shipping", 1, 25000),
    ]
    installments = list(Installment.objects.filter(invoice=stored).order_by("number"))
    assert [x.number for x in installments] == [1, 2, 3]
    assert sum(x.amount_minor for x in installments) == stored.total_minor
    assert all(x.status == "unpaid" and x.amount_paid_minor == 0 for x in installments)
    assert isinstance(installments[0].due_date, date)
    assert invoice._state.adding is False and invoice._state.db == "default"


def test_one_statement_for_the_rows_plus_lookups_and_event(merchant, django_assert_num_queries):
    account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.029", fixed_minor=2000)
    # gateway account + fee (1), invoice + line items + installments + event + its deliveries and jobs (1, ADR
    # 0024); inside the caller's (here the test's) transaction the statement runs in a savepoint (2).
    with django_assert_num_queries(4) as queries:
        _create(merchant)
    assert queries.captured_queries[1]["sql"].startswith("SAVEPOINT")


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_statement_is_the_transaction(merchant):
    """Outside a transaction block the invoice statement runs as a transaction of its own: two statements (the
    fee lookup and the write), no BEGIN/COMMIT (psycopg sends BEGIN only with autocommit off)."""
    from django.db import connection

    account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.029", fixed_minor=2000)
    log = []

    def record(execute, sql, params, many, context):
        log.append((sql.split()[0], connection.in_atomic_block, connection.get_autocommit()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        invoice = _create(merchant)
    assert log == [("SELECT", False, True), ("WITH", False, True)]
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    with pytest.raises(Exception) as raised:  # a refused statement leaves nothing, and the connection usable
        _create(merchant)
    assert getattr(raised.value, "code", None) == "external_id_duplicate"
    assert Invoice.objects.filter(merchant=merchant).count() == 1


def test_single_installment_invoice_and_a_failed_insert_leave_nothing(merchant):
    invoice = _create(
        merchant, gateway=None, installments=None, external_id=None, line_items=[LineItemIn("A", 1, "5", "0")]
    )
    assert [(x.number, x.amount_minor) for x in invoice.installments.all()] == [(1, 5)]
    assert Installment.objects.filter(invoice=invoice).count() == 1
    _create(merchant, gateway=None, external_id="dup")
    before = (Invoice.objects.count(), LineItem.objects.count(), Installment.objects.count())
    with transaction.atomic():  # a duplicate external_id fails the one statement: no child row is left behind
        with pytest.raises(Exception) as raised:
            _create(merchant, gateway=None, external_id="dup")
    assert getattr(raised.value, "code", None) == "external_id_duplicate"
    assert (Invoice.objects.count(), LineItem.objects.count(), Installment.objects.count()) == before


def test_a_hundred_lines_and_twelve_custom_installments_are_stored_as_returned(merchant):
    lines = [LineItemIn(f"Item {i}", i + 1, str(1000 + i), "0.11" if i % 2 else "0") for i in range(100)]
    invoice = _create(merchant, gateway=None, line_items=lines, installments=InstallmentsIn(count=12))
    stored_lines = list(LineItem.objects.filter(invoice=invoice).order_by("position"))
    assert [(x.position, x.name, x.quantity) for x in stored_lines] == [
        (i, f"Item {i}", i + 1) for i in range(100)
    ]
    stored = list(Installment.objects.filter(invoice=invoice).order_by("number"))
    assert len(stored) == 12 and sum(x.amount_minor for x in stored) == invoice.total_minor
    # what the response showed, rendered from the rows as written = what the stored rows render to
    assert invoice_render_created(invoice) == invoice_render(invoice_get_stored(invoice), payments=[])


def test_the_event_in_the_same_statement_gets_its_deliveries_and_jobs_and_the_invoice_snapshot(merchant):
    """The `invoice.created` event is inserted by the invoice's own statement (ADR 0024); the endpoints it returns
    get their deliveries and jobs in the same statement, and the event's data is the invoice's representation
    (as rendered from the stored rows afterwards)."""
    from procrastinate.contrib.django.models import ProcrastinateJob

    from invoices.selectors import invoice_get, invoice_render
    from tests.webhooks.factories import WebhookEndpointFactory
    from webhooks.outbound.models import Delivery, Event

    all_events = WebhookEndpointFactory(merchant=merchant)
    created_only = WebhookEndpointFactory(merchant=merchant, enabled_events=["invoice.created"])
    WebhookEndpointFactory(merchant=merchant, enabled_events=["invoice.paid"])
    WebhookEndpointFactory(merchant=merchant, enabled=False)
    WebhookEndpointFactory()  # another merchant
    account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.029", fixed_minor=2000)
    invoice = _create(merchant)

    (event,) = Event.objects.filter(merchant=merchant, type="invoice.created")
    assert event.data["id"] == invoice.id
    assert event.data == invoice_render(
        invoice_get(merchant=merchant, mode="test", invoice_id=invoice.id), payments=[]
    )
    deliveries = Delivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {all_events.id, created_only.id}
    ours = {d.id for d in deliveries}
    jobs = [
        j
        for j in ProcrastinateJob.objects.filter(task_name="webhooks.deliver_webhook")
        if j.args.get("delivery_id") in ours
    ]
    assert sorted(j.lock for j in jobs) == sorted(ours)


def test_a_failed_invoice_insert_leaves_no_event(merchant):
    from webhooks.outbound.models import Event

    _create(merchant, gateway=None, external_id="dup-event")
    with transaction.atomic(), pytest.raises(Exception):  # noqa: B017 - the duplicate external_id
        _create(merchant, gateway=None, external_id="dup-event")
    assert Event.objects.filter(merchant=merchant, type="invoice.created").count() == 1
