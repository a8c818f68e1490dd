"""Property tests over random invoices: the formulas hold exactly, shares add up, nothing is negative.

The expected values are computed here with plain integer arithmetic (half up = floor((2·n·r + d) / 2d)), not
with paytrust.money, so a rounding bug there cannot hide itself.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoices import calc
from invoices.calc import InstallmentPlan, LineItemIn
from invoices.models import Installment, LineItem
from paytrust import money
from tests.invoices.factories import account_with_fee, make_invoice

RATE_SCALE = 10_000  # rates have at most 4 decimals


def half_up(numerator: int, denominator: int) -> int:
    """round(numerator / denominator) half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


rates = st.integers(min_value=0, max_value=RATE_SCALE)
lines_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=1000),  # quantity
        st.integers(min_value=0, max_value=10**9),  # unit price, minor units
        rates,  # tax rate × 10^4
    ),
    min_size=1,
    max_size=100,
)


def _line_inputs(lines, currency):
    return [
        LineItemIn(f"item {i}", qty, money.format_amount(price, currency), Decimal(rate).scaleb(-4))
        for i, (qty, price, rate) in enumerate(lines)
    ]


@settings(max_examples=300, deadline=None)
@given(
    currency=st.sampled_from(money.ENABLED_CURRENCIES),
    lines=lines_strategy,
    fee_rate=rates,
    fee_fixed=st.integers(min_value=0, max_value=10**6),
)
def test_line_taxes_fee_and_total_follow_the_formulas(currency, lines, fee_rate, fee_fixed):
    parsed = calc.parse_line_items(_line_inputs(lines, currency), currency)
    totals = calc.compute_totals(parsed, fee_percent=Decimal(fee_rate).scaleb(-4), fee_fixed_minor=fee_fixed)

    expected_subtotals = [qty * price for qty, price, _ in lines]
    expected_taxes = [half_up(qty * price * rate, RATE_SCALE) for qty, price, rate in lines]
    assert [line.subtotal_minor for line in parsed] == expected_subtotals
    assert [line.tax_minor for line in parsed] == expected_taxes
    subtotal = sum(expected_subtotals)
    fee = half_up(subtotal * fee_rate, RATE_SCALE) + fee_fixed
    assert totals.subtotal_minor == subtotal
    assert totals.tax_total_minor == sum(expected_taxes)
    assert totals.service_fee_minor == fee
    assert totals.total_minor == subtotal + sum(expected_taxes) + fee


@st.composite
def plans(draw):
    total = draw(st.integers(min_value=12, max_value=10**13))
    tax = draw(st.integers(min_value=0, max_value=total))
    fee = draw(st.integers(min_value=0, max_value=total - tax))
    count = draw(st.integers(min_value=2, max_value=12))
    if draw(st.booleans()):
        # custom amounts: random cut points, each part >= 1
        cuts = sorted(
            draw(
                st.sets(st.integers(min_value=1, max_value=total - 1), min_size=count - 1, max_size=count - 1)
            )
        )
        bounds = [0, *cuts, total]
        amounts = tuple(bounds[i + 1] - bounds[i] for i in range(count))
    else:
        amounts = None
    return calc.Totals(total - tax - fee, tax, fee, total), InstallmentPlan(count=count, amounts=amounts)


@settings(max_examples=500, deadline=None)
@given(case=plans())
def test_installment_amounts_and_shares_sum_exactly_and_are_never_negative(case):
    totals, plan = case
    first = date(2030, 1, 31)
    rows = calc.compute_installments(totals, plan, first_due=first)
    assert len(rows) == plan.count
    assert sum(r.amount_minor for r in rows) == totals.total_minor
    assert sum(r.tax_share_minor for r in rows) == totals.tax_total_minor
    assert sum(r.fee_share_minor for r in rows) == totals.service_fee_minor
    assert all(r.amount_minor >= 1 and r.tax_share_minor >= 0 and r.fee_share_minor >= 0 for r in rows)
    if plan.amounts is None:
        base = totals.total_minor // plan.count
        assert [r.amount_minor for r in rows[:-1]] == [base] * (plan.count - 1)
    else:
        assert tuple(r.amount_minor for r in rows) == plan.amounts
    # all but the last share are floor(figure × amount / total)
    for r in rows[:-1]:
        assert r.tax_share_minor == totals.tax_total_minor * r.amount_minor // totals.total_minor
        assert r.fee_share_minor == totals.service_fee_minor * r.amount_minor // totals.total_minor
    assert [r.due_date for r in rows] == [first + timedelta(days=30 * i) for i in range(plan.count)]
    assert [r.number for r in rows] == list(range(1, plan.count + 1))


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    currency=st.sampled_from(money.ENABLED_CURRENCIES),
    lines=st.lists(st.tuples(st.integers(1, 50), st.integers(100, 10**8), rates), min_size=1, max_size=12),
    fee_rate=rates,
    fee_fixed=st.integers(0, 10**5),
    count=st.one_of(st.none(), st.integers(2, 12)),
)
def test_stored_invoices_add_up_in_the_database(merchant, currency, lines, fee_rate, fee_fixed, count):
    account = account_with_fee(
        merchant,
        gateway="xendit",
        currency=currency,
        percent=Decimal(fee_rate).scaleb(-4),
        fixed_minor=fee_fixed,
    )
    invoice = make_invoice(
        merchant,
        currency=currency,
        gateway=account.id,
        lines=[
            (f"item {i}", q, money.format_amount(p, currency), Decimal(r).scaleb(-4))
            for i, (q, p, r) in enumerate(lines)
        ],
        installments=calc.InstallmentsIn(count=count) if count else None,
    )
    account.fees.all().delete()  # next example configures its own fee
    stored_lines = list(LineItem.objects.filter(invoice=invoice))
    stored_installments = list(Installment.objects.filter(invoice=invoice))
    assert invoice.subtotal_minor == sum(line.subtotal_minor for line in stored_lines)
    assert invoice.tax_total_minor == sum(line.tax_minor for line in stored_lines)
    assert invoice.service_fee_minor == half_up(invoice.subtotal_minor * fee_rate, RATE_SCALE) + fee_fixed
    assert invoice.total_minor == invoice.subtotal_minor + invoice.tax_total_minor + invoice.service_fee_minor
    assert len(stored_installments) == (count or 1)
    assert sum(i.amount_minor for i in stored_installments) == invoice.total_minor
    assert sum(i.tax_share_minor for i in stored_installments) == invoice.tax_total_minor
    assert sum(i.fee_share_minor for i in stored_installments) == invoice.service_fee_minor
