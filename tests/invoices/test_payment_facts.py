"""The reporting facts `invoice_apply_payment` writes with each payment (SPEC §10): the tax, service fee and taxable
base a payment carries, and their split per tax rate.

The hand-worked example's figures were computed on paper from the SPEC's rules; the property test checks that
whatever the invoice and however it is paid (partial pieces, several installments at once, overpayment), the
figures of a fully paid invoice's payments add up exactly to the invoice's own.
"""

from __future__ import annotations

import importlib
import itertools
from decimal import Decimal

import pytest
from django.apps import apps
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoices.calc import InstallmentsIn
from invoices.models import Installment, LineItem, PaymentApplication, PaymentApplicationTax
from invoices.services import invoice_apply_payment, invoice_mark_payment_initiated
from paytrust import money
from tests.invoices.factories import account_with_fee, make_invoice

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


def _pay(invoice, amount, installment=None):
    return invoice_apply_payment(
        invoice_id=invoice.id,
        payment_id=f"pay_facts_{next(_ids)}",
        amount_minor=amount,
        currency=invoice.currency,
        installment_number=installment,
        paid_at=timezone.now(),
        payments=[],
    ).application


def _rates(application):
    return [
        (str(row.tax_rate), row.taxable_minor, row.tax_minor)
        for row in PaymentApplicationTax.objects.filter(application=application).order_by("tax_rate")
    ]


@pytest.fixture
def worked_invoice(merchant):
    """IDR: 100000 @ 11 % (tax 11000), 50000 @ 0 %, 2 × 25000 @ 5 % (tax 2500); fee 2 % + 1000 = 5000;
    total 218500 in 3 installments 72833 / 72833 / 72834 with tax shares 4499 / 4499 / 4502 and fee shares
    1666 / 1666 / 1668."""
    account = account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.02", fixed_minor=1000)
    invoice = make_invoice(
        merchant,
        gateway=account.id,
        lines=[("A", 1, "100000", "0.11"), ("B", 1, "50000", "0"), ("C", 2, "25000", "0.05")],
        installments=InstallmentsIn(count=3),
    )
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    shares = list(
        Installment.objects.filter(invoice=invoice)
        .order_by("number")
        .values_list("amount_minor", "tax_share_minor", "fee_share_minor")
    )
    assert shares == [(72833, 4499, 1666), (72833, 4499, 1666), (72834, 4502, 1668)]
    return invoice


def test_partial_payment_carries_the_floor_of_the_installment_shares(worked_invoice):
    first = _pay(worked_invoice, 30000)

    # floor(4499 × 30000 / 72833) = 1853, floor(1666 × 30000 / 72833) = 686
    assert (first.tax_minor, first.fee_minor, first.taxable_minor) == (1853, 686, 27461)
    assert (first.merchant_id, first.mode, first.gateway, first.currency) == (
        worked_invoice.merchant_id,
        "test",
        "xendit",
        "IDR",
    )
    # tax 1853 over line taxes 0 / 2500 / 11000; taxable 27461 over line subtotals 50000 / 50000 / 100000
    assert _rates(first) == [("0.0000", 6865, 0), ("0.0500", 6865, 343), ("0.1100", 13731, 1510)]


def test_completing_piece_takes_what_remains_and_overpaid_money_carries_nothing(worked_invoice):
    _pay(worked_invoice, 30000)
    # 42833 completes installment 1 (tax 4499 - 1853, fee 1666 - 686), 17167 is a partial piece of installment 2
    second = _pay(worked_invoice, 60000)
    assert (second.tax_minor, second.fee_minor, second.taxable_minor) == (2646 + 1060, 980 + 392, 54922)
    assert _rates(second) == [("0.0000", 13730, 0), ("0.0500", 13730, 686), ("0.1100", 27462, 3020)]
    # 55666 completes installment 2, 72834 all of installment 3, 71500 is overpaid
    third = _pay(worked_invoice, 200000)
    assert (third.applied_minor, third.overpaid_minor) == (128500, 71500)
    assert (third.tax_minor, third.fee_minor, third.taxable_minor) == (3439 + 4502, 1274 + 1668, 117617)
    assert _rates(third) == [("0.0000", 29405, 0), ("0.0500", 29405, 1471), ("0.1100", 58807, 6470)]
    # a payment on the paid invoice is all overpayment: no tax, no fee, no rate rows
    late = _pay(worked_invoice, 5000)
    assert (late.overpaid_minor, late.tax_minor, late.fee_minor, late.taxable_minor) == (5000, 0, 0, 0)
    assert _rates(late) == []


def test_replayed_application_writes_no_second_set_of_facts(worked_invoice):
    application = _pay(worked_invoice, 30000)
    replay = invoice_apply_payment(
        invoice_id=worked_invoice.id,
        payment_id=application.payment_id,
        amount_minor=30000,
        currency="IDR",
        installment_number=None,
        paid_at=application.paid_at,
        payments=[],
    )
    assert replay.replayed
    assert PaymentApplicationTax.objects.filter(application__invoice=worked_invoice).count() == 3


def test_backfill_migration_recomputes_the_same_facts(worked_invoice):
    for amount in (30000, 60000, 200000):
        _pay(worked_invoice, amount)
    expected = {
        row.pk: (
            row.merchant_id,
            row.mode,
            row.gateway,
            row.tax_minor,
            row.fee_minor,
            row.taxable_minor,
            _rates(row),
        )
        for row in PaymentApplication.objects.filter(invoice=worked_invoice)
    }
    PaymentApplicationTax.objects.all().delete()
    PaymentApplication.objects.update(tax_minor=0, fee_minor=0, taxable_minor=F("applied_minor"), gateway="")

    migration = importlib.import_module("invoices.migrations.0003_payment_application_report_facts")
    migration.backfill(apps, None)

    actual = {
        row.pk: (
            row.merchant_id,
            row.mode,
            row.gateway,
            row.tax_minor,
            row.fee_minor,
            row.taxable_minor,
            _rates(row),
        )
        for row in PaymentApplication.objects.filter(invoice=worked_invoice)
    }
    assert actual == expected


# ---- property: fully paid invoices' payments add up to the invoice, whatever the split ----


RATES = [Decimal(r) for r in ("0", "0.05", "0.07", "0.11", "0.125", "1")]


@st.composite
def invoices_and_payments(draw):
    currency = draw(st.sampled_from(money.ENABLED_CURRENCIES))
    lines = draw(
        st.lists(
            st.tuples(st.integers(1, 5), st.integers(0, 10**7), st.sampled_from(RATES)),
            min_size=1,
            max_size=6,
        ).filter(lambda rows: sum(q * p for q, p, _ in rows) > 0)
    )
    fee_percent = draw(st.sampled_from([Decimal("0"), Decimal("0.029"), Decimal("0.1"), Decimal("0.0333")]))
    fee_fixed = draw(st.integers(0, 5000))
    count = draw(st.one_of(st.none(), st.integers(2, 6)))
    # Each payment: a fraction (per mille) of what is still due, above 1000 for an overpayment; and whether it
    # targets a later unpaid installment (allocation wraps around to the earlier ones).
    payments = draw(st.lists(st.tuples(st.integers(1, 1500), st.booleans()), min_size=1, max_size=8))
    late_overpayment = draw(st.one_of(st.none(), st.integers(1, 10**6)))
    return currency, lines, fee_percent, fee_fixed, count, payments, late_overpayment


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=invoices_and_payments())
def test_fully_paid_invoice_payments_carry_exactly_its_tax_fee_and_subtotal(merchant, case):
    currency, lines, fee_percent, fee_fixed, count, payments, late_overpayment = case
    account = account_with_fee(
        merchant, gateway="xendit", currency=currency, percent=fee_percent, fixed_minor=fee_fixed
    )
    invoice = make_invoice(
        merchant,
        currency=currency,
        gateway=account.id,
        lines=[(f"item {i}", q, money.format_amount(p, currency), r) for i, (q, p, r) in enumerate(lines)],
        installments=InstallmentsIn(count=count)
        if count and count <= sum(q * p for q, p, _ in lines)
        else None,
    )
    account.fees.all().delete()  # the next example configures its own fee
    invoice_mark_payment_initiated(invoice_id=invoice.id)

    applications = []
    for per_mille, target_later in payments:
        invoice.refresh_from_db()
        due = invoice.total_minor - invoice.amount_paid_minor
        if due == 0:
            break
        unpaid = list(Installment.objects.filter(invoice=invoice).exclude(status="paid").order_by("number"))
        target = unpaid[-1].number if target_later else None
        applications.append(_pay(invoice, max(1, due * per_mille // 1000), installment=target))
    invoice.refresh_from_db()
    if invoice.amount_paid_minor < invoice.total_minor:
        applications.append(_pay(invoice, invoice.total_minor - invoice.amount_paid_minor))
    if late_overpayment:
        applications.append(_pay(invoice, late_overpayment))
    invoice.refresh_from_db()
    assert invoice.status == "paid"

    assert sum(a.amount_minor for a in applications) == invoice.total_minor + invoice.overpaid_minor
    assert sum(a.tax_minor for a in applications) == invoice.tax_total_minor
    assert sum(a.fee_minor for a in applications) == invoice.service_fee_minor
    assert sum(a.taxable_minor for a in applications) == invoice.subtotal_minor
    for application in applications:
        assert application.tax_minor >= 0 and application.fee_minor >= 0
        assert (
            application.applied_minor
            == application.taxable_minor + application.tax_minor + application.fee_minor
        )
        rows = _rates(application)
        assert sum(tax for _, _, tax in rows) == application.tax_minor
        assert sum(taxable for _, taxable, _ in rows) == application.taxable_minor
        if application.applied_minor == 0:
            assert rows == [] and application.tax_minor == application.fee_minor == 0
    # per rate, the payments carry exactly the invoice's lines at that rate
    expected_by_rate: dict[str, list[int]] = {}
    for line in LineItem.objects.filter(invoice=invoice):
        sums = expected_by_rate.setdefault(str(line.tax_rate), [0, 0])
        sums[0] += line.subtotal_minor
        sums[1] += line.tax_minor
    carried_by_rate: dict[str, list[int]] = {rate: [0, 0] for rate in expected_by_rate}
    for row in PaymentApplicationTax.objects.filter(application__invoice=invoice):
        carried_by_rate[str(row.tax_rate)][0] += row.taxable_minor
        carried_by_rate[str(row.tax_rate)][1] += row.tax_minor
    assert carried_by_rate == expected_by_rate
