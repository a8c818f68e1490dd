"""Money paid before the invoice's lapse time but reported after it (issue 11 point 6, docs/adr/0025): applied as an
ordinary payment, also after the expiry job expired the invoice; money paid after the lapse time is still unapplied
overpayment of the expired invoice."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from invoices.calc import InstallmentsIn
from invoices.models import Installment, Invoice, PaymentApplication
from invoices.services import invoice_apply_payment, invoice_expire, invoice_mark_payment_initiated
from invoices.states import effective_status
from tests.invoices.factories import make_invoice

pytestmark = pytest.mark.django_db


def apply(invoice, amount, *, paid_at, payment_id="pay_late"):
    return invoice_apply_payment(
        invoice_id=invoice.id,
        payment_id=payment_id,
        amount_minor=amount,
        currency=invoice.currency,
        installment_number=None,
        paid_at=paid_at,
        payments=[],
    )


def lapsed_and_expired(merchant, *, installments=None, lines=(("Widget", 1, "100000", "0"),)):
    """An initiated invoice whose lapse time passed a minute ago and which the expiry job has expired."""
    invoice = make_invoice(merchant, lines=lines, installments=installments)
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    lapse = timezone.now() - timedelta(minutes=1)
    # The clock moves on: the lapse time is now in the past (expires_at/lapses_at are not frozen by initiation).
    Invoice.objects.filter(pk=invoice.pk).update(expires_at=lapse, lapses_at=lapse)
    assert invoice_expire(invoice_id=invoice.id, payments=[]) is True
    invoice.refresh_from_db()
    assert invoice.status == "expired" and invoice.expired_at is not None
    return invoice


def test_money_paid_before_the_lapse_reopens_an_expired_invoice_as_paid(merchant, events):
    invoice = lapsed_and_expired(merchant)

    result = apply(invoice, invoice.total_minor, paid_at=invoice.lapses_at - timedelta(minutes=5))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid_minor, invoice.overpaid_minor) == ("paid", 100000, 0)
    assert invoice.expired_at is None
    assert invoice.paid_at == invoice.lapses_at - timedelta(minutes=5)
    assert (result.application.applied_minor, result.application.overpaid_minor) == (100000, 0)
    assert [(i.status, i.amount_paid_minor) for i in Installment.objects.filter(invoice=invoice)] == [
        ("paid", 100000)
    ]
    types = [event_type for event_type, _ in events]
    # The invoice.expired already sent stays; the normal events follow it.
    assert types.index("invoice.expired") < types.index("invoice.paid")
    assert types.count("invoice.paid") == 1 and "installment.paid" in types
    assert events[-1][1]["status"] == "paid" and events[-1][1]["amount_paid"] == "100000"


def test_money_paid_exactly_at_the_lapse_time_counts_as_in_time(merchant):
    invoice = lapsed_and_expired(merchant)

    apply(invoice, invoice.total_minor, paid_at=invoice.lapses_at)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.overpaid_minor) == ("paid", 0)


def test_money_paid_exactly_at_the_lapse_time_of_an_open_invoice_pays_it(merchant):
    invoice = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=invoice.id)

    apply(invoice, invoice.total_minor, paid_at=invoice.lapses_at)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.overpaid_minor) == ("paid", 0)


def test_an_underpayment_paid_in_time_reopens_as_partially_paid_and_still_reads_expired(merchant, events):
    invoice = lapsed_and_expired(merchant)

    apply(invoice, 40000, paid_at=invoice.lapses_at - timedelta(seconds=1))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid_minor, invoice.expired_at) == ("partially_paid", 40000, None)
    assert [event_type for event_type, _ in events][-1] == "invoice.partially_paid"
    # As if it had arrived in time: partly paid, and its lapse time (still in the past) has passed, so it reads as
    # expired and the expiry job expires it again.
    assert effective_status(invoice, timezone.now()) == "expired"
    assert invoice_expire(invoice_id=invoice.id, payments=[]) is True
    assert [event_type for event_type, _ in events][-1] == "invoice.expired"


def test_an_installment_plan_paid_in_time_reopens_with_its_installment_lapse_time(merchant):
    invoice = lapsed_and_expired(
        merchant, lines=(("Course", 1, "300000", "0"),), installments=InstallmentsIn(count=3)
    )

    apply(invoice, 100000, paid_at=invoice.lapses_at - timedelta(minutes=1))

    invoice.refresh_from_db()
    assert invoice.status == "partially_paid"
    installments = list(Installment.objects.filter(invoice=invoice).order_by("number"))
    assert [(i.status, i.amount_paid_minor) for i in installments] == [
        ("paid", 100000),
        ("unpaid", 0),
        ("unpaid", 0),
    ]
    # A plan that has received money stays open until the end of its last due date (ADR 0021): open again.
    last_due = max(i.due_date for i in installments)
    assert invoice.lapses_at == datetime.combine(last_due + timedelta(days=1), time.min, tzinfo=UTC)
    assert effective_status(invoice, timezone.now()) == "partially_paid"


def test_money_paid_after_the_lapse_keeps_the_expired_invoice_expired_as_overpayment(merchant, events):
    invoice = lapsed_and_expired(merchant)
    before = len(events)

    apply(invoice, invoice.total_minor, paid_at=invoice.lapses_at + timedelta(seconds=1))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid_minor, invoice.overpaid_minor) == ("expired", 0, 100000)
    assert invoice.expired_at is not None
    assert PaymentApplication.objects.get(payment_id="pay_late").overpaid_minor == 100000
    assert events[before:] == []


def test_a_second_payment_in_time_after_a_late_one_still_counts(merchant):
    """Money paid after the lapse stays overpayment; a payment paid in time and reported even later reopens."""
    invoice = lapsed_and_expired(merchant)
    apply(invoice, 100000, paid_at=invoice.lapses_at + timedelta(seconds=30), payment_id="pay_after")

    apply(invoice, 100000, paid_at=invoice.lapses_at - timedelta(seconds=30), payment_id="pay_before")

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid_minor, invoice.overpaid_minor) == ("paid", 100000, 100000)
