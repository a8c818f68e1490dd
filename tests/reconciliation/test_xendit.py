"""Xendit's Transaction API as the settlement list (gateways/xendit/settlement.py) against the fake Xendit fed with
the documented Transaction example (tests/fixtures/reconciliation/SOURCES.md): every page read through `after_id`,
only SUCCESS transactions, fees and a withdrawal (payout) posted, refunds matched by our reference_id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateways import base as gw
from gateways.xendit import settlement as xendit_settlement
from ledger.models import Movement
from payments.models import Payment
from payments.services import GatewayStatusUpdate, payment_apply_gateway_status, payment_initiate
from paytrust.errors import ApplicationError
from reconciliation.models import LineClass, ReconciliationLine, RunStatus
from reconciliation.services import reconcile_day
from reporting.ledger_check import ledger_check
from tests.payments.factories import make_invoice
from tests.reconciliation.support import balance, today

pytestmark = pytest.mark.django_db


def xendit_paid(merchant, account, amount: str):
    invoice = make_invoice(merchant, gateway=account.pk, amount=amount)
    payment = payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment
    outcome = payment_apply_gateway_status(
        payment_id=payment.pk,
        gateway_account_id=account.pk,
        update=GatewayStatusUpdate(
            status=gw.GatewayOutcome.SUCCEEDED,
            amount_minor=payment.amount_minor,
            currency="IDR",
            occurred_at=datetime.now(UTC),
        ),
        source="test",
    )
    assert outcome.payment.status == "succeeded"
    return outcome.payment


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_xendit_transactions_of_the_day_reconcile_over_several_pages(
    merchant, xendit_account, xendit_fake, monkeypatch
):
    monkeypatch.setattr(xendit_settlement, "PAGE_SIZE", 2)  # 6 transactions: three pages
    first, second = (
        xendit_paid(merchant, xendit_account, "100000"),
        xendit_paid(merchant, xendit_account, "250000"),
    )
    now = datetime.now(UTC)
    fee = {"xendit_fee": 900, "value_added_tax": 100}
    for payment in (first, second):
        xendit_fake.record_transaction(
            reference_id=payment.pk,
            product_id=payment.gateway_reference,
            amount=payment.amount_received_minor,
            created=iso(now),
            fee=fee,
        )
    xendit_fake.record_transaction(
        reference_id="pay_someone_else", amount=5000, status="FAILED", created=iso(now)
    )
    xendit_fake.record_transaction(
        reference_id="order-from-dashboard", amount=42_000, created=iso(now), fee=fee
    )
    xendit_fake.record_transaction(
        type="WITHDRAWAL",
        cashflow="MONEY_OUT",
        reference_id="wd-1",
        amount=300_000,
        created=iso(now),
        fee=None,
    )
    xendit_fake.record_transaction(
        reference_id=first.pk, amount=100_000, created=iso(now - timedelta(days=2))
    )

    run = reconcile_day(account=xendit_account, day=today())

    assert run.status == RunStatus.DISCREPANCIES
    assert run.counts[LineClass.MATCHED] == 2 and run.counts[LineClass.MISSING_IN_PAYTRUST] == 1
    assert sum(run.counts.values()) == 3  # the failed one and the other day's are not in it
    unknown = ReconciliationLine.objects.get(run=run, line_class=LineClass.MISSING_IN_PAYTRUST)
    assert (unknown.payment_id, unknown.gateway_amount_minor, unknown.fee_minor) == (
        "order-from-dashboard",
        42_000,
        1_000,
    )
    assert balance(merchant, "gateway_fees") == 2 * 1_000
    assert balance(merchant, "bank") == 300_000
    assert run.totals["IDR"]["clearing_agrees"] is True
    lists = [r for r in xendit_fake.requests if r.path == "/transactions"]
    assert (
        len(lists) == 3
        and lists[1].query["after_id"]
        and lists[0].query["created[gte]"][0].endswith("T00:00:00.000Z")
    )
    assert ledger_check(merchant_id=merchant.pk).ok
    movements = Movement.objects.count()
    reconcile_day(account=xendit_account, day=today())
    assert Movement.objects.count() == movements


def test_xendit_unreachable_marks_the_run_failed_and_keeps_nothing_half_done(
    merchant, xendit_account, xendit_fake, settings
):
    xendit_fake.stop()

    run = reconcile_day(account=xendit_account, day=today())

    assert run.status == RunStatus.FAILED and "gateway_" in run.error
    assert not ReconciliationLine.objects.exists()
    assert not Movement.objects.filter(source_type="settlement_line").exists()


def test_an_unknown_payment_of_the_day_is_asked_about_before_the_day_is_classified(
    merchant, xendit_account, xendit_fake, fast_timeout
):
    invoice = make_invoice(merchant, gateway=xendit_account.pk, amount="150000")
    xendit_fake.hang_after_create = True  # Xendit creates the invoice but its answer never arrives
    with pytest.raises(ApplicationError):
        payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id)
    xendit_fake.hang_after_create = False
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "unknown"
    (xendit_invoice,) = xendit_fake.invoices.values()
    xendit_fake.mark_paid(xendit_invoice["id"])  # the customer paid it anyway
    xendit_fake.record_transaction(
        reference_id=payment.pk,
        product_id=xendit_invoice["id"],
        amount=150_000,
        created=iso(datetime.now(UTC)),
    )

    run = reconcile_day(account=xendit_account, day=today())

    payment.refresh_from_db()
    assert payment.status == "succeeded"  # asked through the payments reconciliation, applied the webhook way
    assert run.counts[LineClass.MATCHED] == 1 and run.open_discrepancies == 0
