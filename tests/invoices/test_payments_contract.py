"""The services the payments work calls: initiation (immutability starts), installment order, applying money
(allocation, overpayment, idempotency per payment id, locking)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from invoices.calc import InstallmentsIn
from invoices.models import Installment, Invoice, PaymentApplication
from invoices.selectors import invoice_next_payable_installment
from invoices.services import (
    invoice_apply_payment,
    invoice_check_installment_payable,
    invoice_mark_payment_initiated,
    invoice_void,
)
from paytrust.errors import Conflict, Unprocessable, ValidationError
from tests.invoices.factories import make_invoice

pytestmark = pytest.mark.django_db

A = 100000  # one installment of a 300000 IDR invoice split in 3


def three_installments(merchant):
    invoice = make_invoice(
        merchant, lines=[("Course", 1, "300000", "0")], installments=InstallmentsIn(count=3)
    )
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    return invoice


def apply(invoice, amount, payment_id="pay_1", installment=None, currency="IDR", paid_at=None):
    return invoice_apply_payment(
        invoice_id=invoice.id,
        payment_id=payment_id,
        amount_minor=amount,
        currency=currency,
        installment_number=installment,
        paid_at=paid_at or timezone.now(),
        payments=[],
    )


def states(invoice):
    rows = Installment.objects.filter(invoice=invoice).order_by("number")
    return [(row.status, row.amount_paid_minor) for row in rows]


# ---- initiation ----


def test_initiation_sets_payment_initiated_at_moves_to_pending_and_records_event(merchant, events):
    invoice = make_invoice(merchant)
    target = invoice_mark_payment_initiated(invoice_id=invoice.id)
    invoice.refresh_from_db()
    assert invoice.status == "pending" and invoice.payment_initiated_at is not None
    assert target.installment.number == 1 and target.amount_minor == invoice.total_minor
    assert [e[0] for e in events] == ["invoice.created", "invoice.pending"]
    assert events[1][1]["status"] == "pending"


def test_second_initiation_changes_nothing(merchant, events):
    invoice = make_invoice(merchant)
    first = invoice_mark_payment_initiated(invoice_id=invoice.id).invoice.payment_initiated_at
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    invoice.refresh_from_db()
    assert invoice.payment_initiated_at == first
    assert [e[0] for e in events].count("invoice.pending") == 1


def test_initiation_of_a_void_or_paid_invoice_is_refused(merchant):
    voided = make_invoice(merchant)
    invoice_void(merchant=merchant, mode="test", invoice_id=voided.id, payments=[])
    with pytest.raises(Conflict) as err:
        invoice_mark_payment_initiated(invoice_id=voided.id)
    assert err.value.code == "invoice_not_payable"

    paid = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=paid.id)
    apply(paid, paid.total_minor)
    with pytest.raises(Conflict) as err:
        invoice_mark_payment_initiated(invoice_id=paid.id)
    assert err.value.code == "invoice_already_paid"


def test_initiation_of_an_overdue_invoice_expires_it_and_is_refused(merchant, events):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    with pytest.raises(Conflict) as err:
        invoice_mark_payment_initiated(invoice_id=invoice.id, now=timezone.now() + timedelta(hours=3))
    assert err.value.code == "invoice_expired"
    invoice.refresh_from_db()
    assert invoice.status == "expired" and invoice.payment_initiated_at is None
    assert events[-1][0] == "invoice.expired"


# ---- installment order ----


def test_only_the_lowest_unpaid_installment_is_payable(merchant):
    invoice = three_installments(merchant)
    assert invoice_check_installment_payable(invoice=invoice).number == 1
    assert invoice_check_installment_payable(invoice=invoice, installment_number=1).number == 1
    with pytest.raises(Conflict) as err:
        invoice_check_installment_payable(invoice=invoice, installment_number=2)
    assert err.value.code == "installment_out_of_order" and err.value.status_code == 409
    with pytest.raises(Conflict) as err:
        invoice_mark_payment_initiated(invoice_id=invoice.id, installment_number=3)
    assert err.value.code == "installment_out_of_order"
    with pytest.raises(ValidationError):
        invoice_check_installment_payable(invoice=invoice, installment_number=4)

    apply(invoice, A)
    assert invoice_next_payable_installment(invoice_id=invoice.id).number == 2
    target = invoice_mark_payment_initiated(invoice_id=invoice.id, installment_number=2)
    assert (target.installment.number, target.amount_minor) == (2, A)


def test_underpaid_installment_stays_next_in_line_for_the_rest(merchant):
    invoice = three_installments(merchant)
    apply(invoice, A // 2)
    target = invoice_mark_payment_initiated(invoice_id=invoice.id)
    assert (target.installment.number, target.amount_minor) == (1, A // 2)
    with pytest.raises(Conflict):
        invoice_check_installment_payable(invoice=invoice, installment_number=2)


# ---- applying money: 0.5x, 1x, 1.5x, 3x an installment ----


def test_half_an_installment_leaves_it_partially_paid(merchant, events):
    invoice = three_installments(merchant)
    result = apply(invoice, A // 2)
    assert states(invoice) == [("partially_paid", 50000), ("unpaid", 0), ("unpaid", 0)]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid_minor, invoice.amount_due_minor, invoice.overpaid_minor) == (
        "partially_paid",
        50000,
        250000,
        0,
    )
    assert result.application.allocations == [{"number": 1, "amount": 50000}]
    assert [e[0] for e in events][-1] == "invoice.partially_paid"
    assert "installment.paid" not in [e[0] for e in events]


def test_exactly_one_installment_pays_it(merchant, events):
    invoice = three_installments(merchant)
    apply(invoice, A)
    assert states(invoice) == [("paid", A), ("unpaid", 0), ("unpaid", 0)]
    invoice.refresh_from_db()
    assert invoice.status == "partially_paid" and invoice.amount_paid_minor == A
    types = [e[0] for e in events]
    assert types[-2:] == ["installment.paid", "invoice.partially_paid"]
    installment_event = events[-2][1]
    assert installment_event["number"] == 1 and installment_event["status"] == "paid"
    assert installment_event["invoice"]["id"] == invoice.id


def test_one_and_a_half_installments_pay_the_next_one_in_part(merchant):
    invoice = three_installments(merchant)
    result = apply(invoice, A + A // 2)
    assert states(invoice) == [("paid", A), ("partially_paid", 50000), ("unpaid", 0)]
    assert result.application.allocations == [{"number": 1, "amount": A}, {"number": 2, "amount": 50000}]
    assert result.application.overpaid_minor == 0


def test_three_installments_worth_pays_the_invoice(merchant, events):
    invoice = three_installments(merchant)
    paid_at = timezone.now() - timedelta(minutes=1)
    apply(invoice, 3 * A, paid_at=paid_at)
    assert states(invoice) == [("paid", A)] * 3
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due_minor, invoice.overpaid_minor) == ("paid", 0, 0)
    assert invoice.paid_at == paid_at
    assert [e[0] for e in events][-4:] == ["installment.paid"] * 3 + ["invoice.paid"]
    assert events[-1][1]["status"] == "paid" and events[-1][1]["amount_due"] == "0"


def test_money_above_the_amount_due_is_overpayment(merchant, api):
    invoice = make_invoice(
        merchant, lines=[("Course", 1, "200000", "0")], installments=InstallmentsIn(count=2)
    )
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    result = apply(invoice, 300000, payment_id="pay_over")  # 3x an installment of 100000
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.overpaid_minor == 100000
    assert (result.application.applied_minor, result.application.overpaid_minor) == (200000, 100000)
    response = api.get(f"/v1/invoices/{invoice.id}/overpayment")
    assert response.status_code == 200
    body = response.json()
    assert body["currency"] == "IDR" and body["amount"] == "100000"
    assert [(p["payment"], p["amount"]) for p in body["payments"]] == [("pay_over", "100000")]
    assert api.get(f"/v1/invoices/{invoice.id}").json()["overpaid"] == "100000"


def test_payment_for_a_later_installment_pays_it_then_the_following_then_earlier_ones(merchant):
    invoice = three_installments(merchant)
    result = apply(invoice, 2 * A + A // 2, installment=2)
    assert result.application.allocations == [
        {"number": 2, "amount": A},
        {"number": 3, "amount": A},
        {"number": 1, "amount": 50000},
    ]
    assert states(invoice) == [("partially_paid", 50000), ("paid", A), ("paid", A)]


def test_installment_shares_of_a_taxed_invoice_with_fee(merchant):
    # 1 × 1000000 at 11 %: tax 110000; sandbox fee none -> total 1110000, 3 installments of 370000 each.
    # tax shares floor(110000 × 370000 / 1110000) = 36666, 36666, last 36668.
    invoice = make_invoice(
        merchant, lines=[("Laptop", 1, "1000000", "0.11")], installments=InstallmentsIn(count=3)
    )
    rows = Installment.objects.filter(invoice=invoice).order_by("number")
    assert [r.amount_minor for r in rows] == [370000, 370000, 370000]
    assert [r.tax_share_minor for r in rows] == [36666, 36666, 36668]
    assert [r.fee_share_minor for r in rows] == [0, 0, 0]


# ---- idempotency, mismatches, closed invoices ----


def test_same_payment_id_applied_twice_changes_nothing_the_second_time(merchant, events):
    invoice = three_installments(merchant)
    first = apply(invoice, A, payment_id="pay_dup")
    events_after_first = len(events)
    second = apply(invoice, A, payment_id="pay_dup")
    assert second.replayed and not first.replayed
    assert second.application.pk == first.application.pk
    invoice.refresh_from_db()
    assert invoice.amount_paid_minor == A and PaymentApplication.objects.count() == 1
    assert len(events) == events_after_first


def test_same_payment_id_with_another_amount_is_a_conflict(merchant):
    invoice = three_installments(merchant)
    apply(invoice, A, payment_id="pay_x")
    with pytest.raises(Conflict) as err:
        apply(invoice, 2 * A, payment_id="pay_x")
    assert err.value.code == "payment_application_mismatch"
    invoice.refresh_from_db()
    assert invoice.amount_paid_minor == A


def test_currency_mismatch_is_refused_and_changes_nothing(merchant):
    invoice = three_installments(merchant)
    with pytest.raises(Unprocessable) as err:
        apply(invoice, A, currency="USD")
    assert err.value.code == "currency_mismatch"
    invoice.refresh_from_db()
    assert invoice.amount_paid_minor == 0 and PaymentApplication.objects.count() == 0


def test_money_for_an_invoice_never_initiated_is_refused(merchant):
    invoice = make_invoice(merchant)
    with pytest.raises(Conflict) as err:
        apply(invoice, 1000)
    assert err.value.code == "invoice_not_initiated"


def test_money_after_paid_is_recorded_as_overpayment_and_status_stays_paid(merchant):
    invoice = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    apply(invoice, invoice.total_minor, payment_id="pay_a")
    apply(invoice, 5000, payment_id="pay_b")
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.overpaid_minor == 5000 and invoice.amount_due_minor == 0


def test_money_for_a_void_invoice_is_unapplied_overpayment(merchant):
    invoice = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    invoice_void(merchant=merchant, mode="test", invoice_id=invoice.id, payments=[])
    apply(invoice, invoice.total_minor)
    invoice.refresh_from_db()
    assert invoice.status == "void" and invoice.amount_paid_minor == 0
    assert invoice.overpaid_minor == invoice.total_minor


def test_money_paid_after_the_lapse_time_expires_the_invoice_and_is_unapplied(merchant, events):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    apply(invoice, invoice.total_minor, paid_at=invoice.expires_at + timedelta(seconds=1))
    invoice.refresh_from_db()
    assert invoice.status == "expired" and invoice.amount_paid_minor == 0
    assert invoice.overpaid_minor == invoice.total_minor
    assert "invoice.expired" in [e[0] for e in events] and "invoice.paid" not in [e[0] for e in events]


def test_money_paid_before_the_lapse_time_counts_even_if_it_arrives_later(merchant):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    Invoice.objects.filter(pk=invoice.pk).update(  # simulate the clock: expiry passed, job not run yet
        expires_at=timezone.now() - timedelta(seconds=5), lapses_at=timezone.now() - timedelta(seconds=5)
    )
    apply(invoice, invoice.total_minor, paid_at=timezone.now() - timedelta(seconds=30))
    invoice.refresh_from_db()
    assert invoice.status == "paid"


# ---- real concurrency ----


def _run_threads(count, target):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker(index):
        try:
            barrier.wait(timeout=10)
            results.append(target(index))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_payment_apply_it_once(merchant):
    invoice = three_installments(merchant)
    results, errors = _run_threads(6, lambda i: apply(invoice, A, payment_id="pay_same"))
    assert errors == []
    assert sum(1 for r in results if not r.replayed) == 1
    invoice.refresh_from_db()
    assert invoice.amount_paid_minor == A and PaymentApplication.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_different_payments_all_count(merchant):
    invoice = three_installments(merchant)
    results, errors = _run_threads(4, lambda i: apply(invoice, 50000, payment_id=f"pay_{i}"))
    assert errors == []
    invoice.refresh_from_db()
    assert invoice.amount_paid_minor == 200000
    assert states(invoice) == [("paid", A), ("paid", A), ("unpaid", 0)]


@pytest.mark.django_db(transaction=True)
def test_initiation_while_the_invoice_is_locked_gets_payment_in_progress(merchant):
    invoice = make_invoice(merchant)
    locked, release = threading.Event(), threading.Event()

    def holder():
        with transaction.atomic():
            Invoice.objects.select_for_update().get(pk=invoice.pk)
            locked.set()
            release.wait(timeout=10)
        connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert locked.wait(timeout=10)
    try:
        with pytest.raises(Conflict) as err:
            invoice_mark_payment_initiated(invoice_id=invoice.id, nowait=True)
        assert err.value.code == "payment_in_progress"
    finally:
        release.set()
        thread.join(timeout=10)
    invoice.refresh_from_db()
    assert invoice.payment_initiated_at is None
