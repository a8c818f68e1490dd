"""The issue's test day on the sandbox (docs/adr/0054): 200 payments and 5 refunds made through the real flows,
the sandbox's settlement export with three injected discrepancies (a payment PayTrust never heard of, an amount
mismatch, a payment left out), reconciled: exactly those three discrepancies, fees and payout in the ledger,
verify_ledger clean, and the same day run again gives the same result without posting anything twice."""

from __future__ import annotations

import pytest

from gateways.models import SandboxSettlementAdjustmentKind as Inject
from gateways.sandbox.settlement import sandbox_fee, sandbox_settlement_inject
from ledger.models import Movement
from reconciliation.models import LineClass, ReconciliationLine, RunStatus
from reconciliation.services import reconcile_day
from reporting.ledger_check import ledger_check
from tests.reconciliation.support import balance, paid_payments, refund, sandbox_account, today
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def snapshot(run):
    lines = sorted(
        ReconciliationLine.objects.filter(run=run).values_list(
            "key", "line_class", "payment_id", "gateway_amount_minor", "paytrust_amount_minor", "fee_minor"
        )
    )
    return run.counts, run.totals, run.open_discrepancies, lines


def test_two_hundred_payments_five_refunds_three_discrepancies_fees_payout_and_idempotent_rerun(merchant):
    account = sandbox_account(merchant)
    amounts = [100_000 + 1_000 * i for i in range(200)]
    payments = paid_payments(merchant, amounts)
    refunds = [refund(payments[i], 20_000) for i in range(5)]
    altered, dropped = payments[10], payments[20]
    day = today()
    sandbox_settlement_inject(account=account, day=day, kind=Inject.UNKNOWN_PAYMENT, amount_minor=75_000)
    sandbox_settlement_inject(
        account=account,
        day=day,
        kind=Inject.ALTER_AMOUNT,
        payment_id=altered.pk,
        amount_minor=altered.amount_received_minor - 5_000,
    )
    sandbox_settlement_inject(account=account, day=day, kind=Inject.DROP, payment_id=dropped.pk)

    run = reconcile_day(account=account, day=day, started_by="test")

    assert run.status == RunStatus.DISCREPANCIES
    assert run.counts == {
        LineClass.MATCHED: 198 + 5,
        LineClass.AMOUNT_MISMATCH: 1,
        LineClass.MISSING_IN_PAYTRUST: 1,
        LineClass.MISSING_AT_GATEWAY: 1,
        LineClass.CURRENCY_MISMATCH: 0,
    }
    assert run.open_discrepancies == 3
    discrepancies = {
        line.line_class: line
        for line in ReconciliationLine.objects.filter(run=run).exclude(line_class="matched")
    }
    assert discrepancies[LineClass.AMOUNT_MISMATCH].payment_id == altered.pk
    assert (
        discrepancies[LineClass.AMOUNT_MISMATCH].gateway_amount_minor == altered.amount_received_minor - 5_000
    )
    assert discrepancies[LineClass.AMOUNT_MISMATCH].paytrust_amount_minor == altered.amount_received_minor
    assert discrepancies[LineClass.MISSING_AT_GATEWAY].payment_id == dropped.pk
    assert discrepancies[LineClass.MISSING_IN_PAYTRUST].gateway_amount_minor == 75_000
    assert discrepancies[LineClass.MISSING_IN_PAYTRUST].payment_id not in {p.pk for p in payments}

    # Fees of the matched payments and the payout of what the sandbox settled are in the ledger.
    matched_amounts = [a for i, a in enumerate(amounts) if i not in (10, 20)]
    matched_fees = sum(sandbox_fee(a) for a in matched_amounts)
    shown = matched_amounts + [altered.amount_received_minor - 5_000, 75_000]
    payout = sum(shown) - sum(sandbox_fee(a) for a in shown) - 5 * 20_000
    assert balance(merchant, "gateway_fees") == matched_fees
    assert balance(merchant, "bank") == payout
    figures = run.totals["IDR"]
    assert figures["gross"] == sum(matched_amounts) and figures["refunds"] == 100_000
    assert figures["fees"] == matched_fees and figures["payouts"] == payout
    assert figures["net"] == sum(matched_amounts) - 100_000 - matched_fees
    # The net settled (plus fees) for the matched lines equals their movement on gateway_clearing.
    assert figures["ledger_clearing"] == figures["gross"] - figures["refunds"]
    assert figures["clearing_agrees"] is True
    assert ledger_check(merchant_id=merchant.pk).ok

    event = Event.objects.get(type="reconciliation.completed", merchant=merchant)
    assert event.data["gateway_account"] == account.pk and event.data["day"] == day.isoformat()
    assert event.data["counts"]["missing_in_paytrust"] == 1 and event.data["open_discrepancies"] == 3

    movements = Movement.objects.filter(merchant=merchant).count()
    before = snapshot(run)
    again = reconcile_day(account=account, day=day, started_by="test")
    assert again.pk == run.pk and again.attempts == 2
    assert snapshot(again) == before
    assert Movement.objects.filter(merchant=merchant).count() == movements  # nothing posted twice
    assert balance(merchant, "bank") == payout and balance(merchant, "gateway_fees") == matched_fees
    assert len(refunds) == 5 and ledger_check(merchant_id=merchant.pk).ok
