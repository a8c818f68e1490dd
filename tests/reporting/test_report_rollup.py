"""The financial report's daily rollup (docs/adr/0040) is exact: after random payments (succeeding, failing,
partial, overpaid), refunds (single by gateway id, cumulative totals, full, partial, chargebacks) and replayed
gateway notifications, across currencies, gateways and days, all through the real services, the report read from
the rollup equals the report recomputed from the raw facts, to the minor unit, for whole-day and cut periods and
every filter; `manage.py report_rollup` finds no difference, and finds (and repairs) one written around the
services."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateways import base as gw
from invoices.calc import CustomerIn, LineItemIn
from invoices.models import CollectedDay
from invoices.services import invoice_create
from payments.models import Payment, RefundDay
from payments.services import GatewayStatusUpdate, payment_apply_gateway_status, payment_initiate
from payments.services.report_rollup import report_rollup_check
from reporting.selectors import financial_report
from tests.reporting.helpers import START

pytestmark = pytest.mark.django_db

DAYS = 4
_emails = itertools.count()

payment_case = st.fixed_dictionaries(
    {
        "account": st.sampled_from(["sandbox_IDR", "xendit_IDR", "xendit_USD"]),
        "price": st.integers(min_value=1, max_value=500_000),
        "rate": st.sampled_from(["0", "0.11", "0.1"]),
        "outcome": st.sampled_from(["succeed", "succeed", "succeed", "partial", "over", "fail"]),
        "day": st.integers(min_value=0, max_value=DAYS - 1),
        "second": st.sampled_from([0, 1, 3600 * 5, 86_399]),  # midnight, just after, mid-day, the last second
        "replays": st.integers(min_value=0, max_value=2),
        "refunds": st.lists(
            st.tuples(
                st.sampled_from(["single", "cumulative", "chargeback", "rest"]),
                st.integers(min_value=1, max_value=100),  # percent of what is still refundable
                st.integers(min_value=0, max_value=2 * 86_400),  # seconds after the payment
                st.booleans(),  # replay the same notification
            ),
            max_size=3,
        ),
    }
)


def _apply(payment: Payment, status: str, *, amount: int, at, refund=None):
    return payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=status, amount_minor=amount, currency=payment.currency, occurred_at=at, refund=refund
        ),
        source="test",
    )


def _refund(payment: Payment, kind: str, percent: int, at, replay: bool, n: int) -> None:
    payment.refresh_from_db()
    remaining = payment.amount_received_minor - payment.amount_refunded_minor
    if remaining <= 0:
        return
    amount = remaining if kind == "rest" else max(1, remaining * percent // 100)
    status = gw.GatewayOutcome.REFUNDED if amount == remaining else gw.GatewayOutcome.PARTIALLY_REFUNDED
    if kind == "cumulative":
        report = gw.RefundReport(total_minor=payment.amount_refunded_minor + amount)
        collected = payment.amount_received_minor
    else:
        report = gw.RefundReport(
            reference=f"rfd-{payment.pk}-{n}", amount_minor=amount, chargeback=kind == "chargeback"
        )
        collected = amount
    for _ in range(1 + replay):  # the replay changes nothing
        _apply(payment, status, amount=collected, at=at, refund=report)


def _play(case: dict, accounts: dict, merchant) -> None:
    account, currency = accounts[case["account"]]
    invoice = invoice_create(
        merchant=merchant,
        mode="test",
        currency=currency,
        gateway=account.id,
        line_items=[
            LineItemIn("Item", 1, str(case["price"]) if currency == "IDR" else "12.34", case["rate"])
        ],
        customer=CustomerIn("Budi", f"rollup{next(_emails)}@example.com", ""),
        expires_at=timezone.now() + timedelta(days=2),
    )
    payment = payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment
    at = START + timedelta(days=case["day"], seconds=case["second"])
    if case["outcome"] == "fail":
        for _ in range(1 + case["replays"]):
            _apply(payment, gw.GatewayOutcome.FAILED, amount=payment.amount_minor, at=at)
        return
    amount = {
        "succeed": payment.amount_minor,
        "partial": max(1, payment.amount_minor // 3),
        "over": payment.amount_minor + 777,
    }[case["outcome"]]
    for _ in range(1 + case["replays"]):  # duplicate success notifications apply once
        _apply(payment, gw.GatewayOutcome.SUCCEEDED, amount=amount, at=at)
    for n, (kind, percent, after, replay) in enumerate(case["refunds"]):
        _refund(payment, kind, percent, at + timedelta(seconds=after), replay, n)


def _periods():
    end = START + timedelta(days=DAYS + 2)
    yield START, end  # whole days
    yield START + timedelta(days=1), START + timedelta(days=2)  # one day
    yield START + timedelta(hours=5), end - timedelta(hours=7)  # cut at both ends
    yield START + timedelta(seconds=1), START + timedelta(days=1, seconds=1)  # two cut days, no whole one
    yield START + timedelta(hours=1), START + timedelta(hours=2)  # inside one day


@pytest.fixture
def accounts(sandbox_account, xendit_account):
    return {
        "sandbox_IDR": (sandbox_account, "IDR"),
        "xendit_IDR": (xendit_account, "IDR"),
        "xendit_USD": (xendit_account, "USD"),
    }


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(payment_case, min_size=1, max_size=6))
def test_report_from_the_rollup_equals_the_recomputation_from_the_facts(merchant, accounts, cases):
    for case in cases:
        _play(case, accounts, merchant)

    filters = ((None, None), ("IDR", None), (None, "xendit"), ("USD", "xendit"), ("IDR", "sandbox"))
    for (start, end), who, (currency, gateway) in itertools.product(_periods(), (merchant, None), filters):
        scope = {"merchant": who, "mode": "test", "start": start, "end": end}
        scope |= {"currency": currency, "gateway": gateway}
        assert financial_report(**scope) == financial_report(**scope, from_facts=True), scope
    assert report_rollup_check() == []


def test_the_rollup_is_what_the_report_reads(merchant, accounts):
    """Not a recomputation in disguise: a rollup changed around the services changes the report."""
    _play(
        {
            "account": "xendit_IDR",
            "price": 100_000,
            "rate": "0.11",
            "outcome": "succeed",
            "day": 1,
            "second": 3600,
            "replays": 1,
            "refunds": [("single", 50, 3600, True)],
        },
        accounts,
        merchant,
    )
    scope = {"merchant": merchant, "mode": "test", "start": START, "end": START + timedelta(days=DAYS)}
    before = financial_report(**scope)
    assert before == financial_report(**scope, from_facts=True)
    assert before.currencies[0].figures.payments_count == 1
    assert before.currencies[0].figures.refunds_minor > 0

    CollectedDay.objects.filter(merchant=merchant).update(gross_minor=1)
    RefundDay.objects.filter(merchant=merchant).update(refunds_minor=2)
    broken = financial_report(**scope)
    assert (broken.currencies[0].figures.gross_minor, broken.currencies[0].figures.refunds_minor) == (1, 2)
    assert financial_report(**scope, from_facts=True) == before


def test_report_rollup_command_finds_and_rebuilds_a_difference(merchant, accounts, capsys):
    _play(
        {
            "account": "sandbox_IDR",
            "price": 50_000,
            "rate": "0.1",
            "outcome": "over",
            "day": 0,
            "second": 0,
            "replays": 0,
            "refunds": [("cumulative", 30, 60, False), ("chargeback", 100, 120, False)],
        },
        accounts,
        merchant,
    )
    call_command("report_rollup")
    assert "rollup equal to the facts" in capsys.readouterr().out

    CollectedDay.objects.filter(merchant=merchant).update(tax_minor=7)
    # Two refund days: a cumulative refund is dated when it is received.
    RefundDay.objects.filter(merchant=merchant).delete()
    with pytest.raises(CommandError, match="3 key"):
        call_command("report_rollup")
    out = capsys.readouterr().out
    assert "collected " in out and "refunds " in out and "rollup None" in out

    call_command("report_rollup", "--rebuild")
    assert "3 key(s) differed before the rebuild" in capsys.readouterr().out
    assert report_rollup_check() == []
    scope = {"merchant": merchant, "mode": "test", "start": START, "end": START + timedelta(days=DAYS)}
    assert financial_report(**scope) == financial_report(**scope, from_facts=True)


def test_our_own_refunds_reach_the_rollup_only_when_they_succeed(merchant, sandbox_account):
    """Refunds asked through the API (refund_create -> the sandbox): one succeeds, one fails, one stays pending;
    only the succeeded one is in the rollup, the day it was paid out."""
    from payments.services import refund_create
    from tests.payments.refund_support import paid_sandbox_payment

    payment = paid_sandbox_payment(merchant, amount="150000")
    statuses = [
        refund_create(merchant=merchant, mode="test", payment_id=payment.id, amount_minor=amount).status
        for amount in (10_000, 20_013, 30_042)  # sandbox: ends in 13 fails, in 42 stays pending
    ]
    assert statuses == ["succeeded", "failed", "pending"]
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    scope = {"merchant": merchant, "mode": "test", "start": today, "end": today + timedelta(days=1)}
    report = financial_report(**scope)
    assert report == financial_report(**scope, from_facts=True)
    assert report.currencies[0].figures.refunds_minor == 10_000
    assert list(
        RefundDay.objects.filter(merchant=merchant).values_list("refunds_count", "refunds_minor")
    ) == [(1, 10_000)]
    assert report_rollup_check() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_and_refunds_of_one_day_lose_no_increment(merchant, sandbox_account):
    """Twelve payments of one tenant, day, currency and gateway succeed at once on twelve connections, then are
    refunded at once: every increment is in the rollup (adding upserts), equal to the facts."""
    from tests.payments.test_initiation_concurrency import _concurrently

    n = 12
    at = START + timedelta(days=1, hours=3)
    payments = []
    for index in range(n):
        invoice = invoice_create(
            merchant=merchant,
            mode="test",
            currency="IDR",
            gateway=sandbox_account.id,
            line_items=[LineItemIn("Item", 1, str(10_000 + index), "0.11")],
            customer=CustomerIn("Budi", f"concurrent{index}@example.com", ""),
            expires_at=timezone.now() + timedelta(days=2),
        )
        payments.append(payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment)
    pending = iter(payments)  # a list iterator: each thread takes its own payment

    def succeed():
        payment = next(pending)
        return _apply(payment, gw.GatewayOutcome.SUCCEEDED, amount=payment.amount_minor, at=at)

    results = _concurrently(n, succeed)
    assert all(not isinstance(r, Exception) and r.changed for r in results), results

    to_refund = iter(payments)

    def refund():
        payment = next(to_refund)
        report = gw.RefundReport(reference=f"rfd-{payment.pk}", amount_minor=1000)
        return _apply(payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, amount=1000, at=at, refund=report)

    results = _concurrently(n, refund)
    assert all(not isinstance(r, Exception) and r.changed for r in results), results

    assert report_rollup_check() == []
    day = CollectedDay.objects.filter(merchant=merchant, day=at.date())
    assert sum(day.values_list("payments_count", flat=True)) == n
    refunds = RefundDay.objects.filter(merchant=merchant, day=at.date())
    assert sum(refunds.values_list("refunds_minor", flat=True)) == n * 1000
    scope = {"merchant": merchant, "mode": "test", "start": START, "end": START + timedelta(days=DAYS)}
    assert financial_report(**scope) == financial_report(**scope, from_facts=True)


def test_backfill_migrations_build_the_rollup_of_the_facts_already_there(merchant, accounts):
    """Facts written before the rollup existed (simulated: the rollup emptied) are rolled up by the SQL of the
    migrations that create the tables."""
    import importlib

    from django.db import connection
    from django.db.migrations import RunSQL

    from invoices.models import CollectedDayTax

    _play(
        {
            "account": "xendit_USD",
            "price": 1,
            "rate": "0.1",
            "outcome": "partial",
            "day": 2,
            "second": 86_399,
            "replays": 0,
            "refunds": [("single", 40, 10, False), ("rest", 0, 20, False)],
        },
        accounts,
        merchant,
    )
    CollectedDay.objects.all().delete()
    CollectedDayTax.objects.all().delete()
    RefundDay.objects.all().delete()
    assert len(report_rollup_check()) == 3  # collected, per rate, refunds (both the next day): all missing

    with connection.cursor() as cursor:
        for name in ("invoices.migrations.0007_report_rollup", "payments.migrations.0014_report_rollup"):
            for operation in importlib.import_module(name).Migration.operations:
                if isinstance(operation, RunSQL):
                    cursor.execute(operation.sql)
    assert report_rollup_check() == []
