"""payments migration 0009 (the ledger backfill) posts for money that moved before the ledger existed exactly what
payments.services.bookkeeping posts now: the data is made through the real flows (which post), the ledger is
emptied (TRUNCATE: what a database from before the ledger looks like), and the migration is unapplied and applied
again with Django's MigrationExecutor. It must give back the same movements, lines, times and descriptions; running
it again, or over movements the code already posted, writes nothing twice."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from invoices.selectors import payment_application_get
from ledger.models import Account, Entry, Movement
from payments.models import Refund
from payments.services import bookkeeping
from tests.ledger.helpers import refund, sandbox_with_fee
from tests.reporting.helpers import invoice, pay

BEFORE = ("payments", "0008_refunds_api")
BACKFILL = ("payments", "0009_ledger_backfill")
PAID_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _ledger() -> dict:
    """Every movement by its key, with what it says; and the accounts."""
    movements = {
        (m.type, m.source_type, m.source_id): (
            m.merchant_id,
            m.mode,
            m.currency,
            m.occurred_at,
            m.description,
            {e.account.code: e.amount_minor for e in m.entries.all()},
        )
        for m in Movement.objects.prefetch_related("entries__account")
    }
    accounts = set(Account.objects.values_list("merchant_id", "mode", "currency", "code"))
    return {"movements": movements, "accounts": accounts}


def _empty_the_ledger() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE ledger_entry, ledger_movement, ledger_account")


def _run_backfill() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    executor.loader.build_graph()
    executor.migrate([BACKFILL])
    # Then forward again to today's schema (later payments migrations add columns the code reads, e.g. risk_score).
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def history(merchant, other_merchant):
    """IDR, sandbox 1 % + 500:
    P1 100000 @ 11 % (tax 11000, fee 1500, total 112500) paid 120000: 7500 overpaid; refunded 5000 (all from the
       customer credit), then 5000 more (the credit's last 2500, then 2500 of the merchant's).
    P2 50000 paid in full; a 20000 chargeback (all from the merchant).
    USD: P3 10.00 paid (another merchant)."""
    account = sandbox_with_fee(merchant)
    p1 = pay(
        invoice(merchant, account, currency="IDR", lines=[("Course", 1, "100000", "0.11")]),
        amount_minor=120000,
        at=PAID_AT,
    )
    refund(p1, 5000)
    refund(p1, 10000)
    p2 = pay(
        invoice(merchant, account, currency="IDR", lines=[("Book", 1, "50000", "0")]),
        amount_minor=None,
        at=PAID_AT,
    )
    refund(p2, 20000, chargeback=True)
    other = sandbox_with_fee(other_merchant)
    p3 = pay(
        invoice(other_merchant, other, currency="USD", lines=[("Pen", 1, "10.00", "0")]),
        amount_minor=None,
        at=PAID_AT,
    )
    return p1, p2, p3


@pytest.mark.django_db(transaction=True)
def test_the_backfill_posts_what_the_code_posts(history, monkeypatch):
    p1, p2, _ = history
    posted_by_the_code = _ledger()
    refunds = list(Refund.objects.filter(payment=p1).order_by("created_at"))
    # What the scenario means, so that this test cannot pass on two equal mistakes.
    assert len(posted_by_the_code["movements"]) == 3 + 2 * 2 + 1
    assert posted_by_the_code["movements"][("refund", "refund", refunds[1].id)][5] == {
        "customer_credit": 2500,
        "merchant_payable": 2500,
        "refunds_payable": -5000,
    }
    assert posted_by_the_code["movements"][("chargeback", "refund", p2.refunds.get().id)][5] == {
        "merchant_payable": 20000,
        "gateway_clearing": -20000,
    }
    _empty_the_ledger()
    assert _ledger() == {"movements": {}, "accounts": set()}
    # One object per batch: every batch boundary (and a payment's refunds in a later batch than others') is crossed.
    monkeypatch.setattr(importlib.import_module("payments.migrations.0009_ledger_backfill"), "BATCH", 1)

    _run_backfill()

    assert _ledger() == posted_by_the_code
    entries = Entry.objects.count()
    _run_backfill()  # again: nothing new
    assert _ledger() == posted_by_the_code
    assert Entry.objects.count() == entries


@pytest.mark.django_db(transaction=True)
def test_the_backfill_leaves_what_the_code_already_posted_and_draws_credit_after_it(history):
    """A database where the code has posted part of it (the payment P1 and its first refund) since the ledger
    exists: the backfill posts the rest, and P1's second refund draws only the customer credit left after the
    first."""
    p1, _, _ = history
    posted_by_the_code = _ledger()
    first = Refund.objects.filter(payment=p1).order_by("created_at").first()
    _empty_the_ledger()
    bookkeeping.post_payment_applied(payment=p1, application=payment_application_get(payment_id=p1.id))
    bookkeeping.post_refund_requested(refund=first)
    bookkeeping.post_refund_succeeded(refund=first)
    already = {m.id for m in Movement.objects.all()}

    _run_backfill()

    assert _ledger() == posted_by_the_code
    assert already <= {m.id for m in Movement.objects.all()}  # the code's movements stay as they were
    assert Movement.objects.count() == len(posted_by_the_code["movements"])
