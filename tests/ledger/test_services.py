"""ledger.services (movement_post, movement_reverse) and the database's own guards (ledger migration 0002): a
movement balances or nothing is written, a replay writes nothing, the deferred trigger refuses at COMMIT what code
bypassing the service writes (unbalanced, or on another currency's account), posted rows are never updated or
deleted, and concurrent first postings for a new merchant/currency create each account once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Sum

from ledger.models import Account, Entry, Movement
from ledger.services import LedgerError, accounts_for, movement_post, movement_reverse
from paytrust.ids import new_id
from tests.factories import MerchantFactory

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
PAYMENT_LINES = {
    "gateway_clearing": 120000,
    "tax_payable": -11000,
    "service_fees": -1500,
    "customer_credit": -7500,
    "merchant_payable": -100000,
}


def _post(merchant, *, source_id="pay_1", lines=PAYMENT_LINES, currency="IDR", mode="test", type="payment"):
    return movement_post(
        merchant_id=merchant.id,
        mode=mode,
        currency=currency,
        type=type,
        source_type="payment",
        source_id=source_id,
        occurred_at=AT,
        lines=lines,
        description=f"payment {source_id}",
    )


def _balances(merchant, currency="IDR") -> dict[str, int]:
    rows = (
        Entry.objects.filter(account__merchant=merchant, account__currency=currency)
        .values_list("account__code")
        .annotate(total=Sum("amount_minor"))
    )
    return dict(rows)


def _ledger_rows() -> tuple[int, int, int]:
    return Movement.objects.count(), Entry.objects.count(), Account.objects.count()


# ---- movement_post -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_balanced_movement_writes_its_entries_on_the_tenants_accounts():
    merchant = MerchantFactory()

    movement, created = _post(merchant)

    assert created and movement.id.startswith("txn_")
    lines = dict(movement.entries.values_list("account__code", "amount_minor"))
    assert lines == PAYMENT_LINES
    accounts = Account.objects.filter(merchant=merchant)
    assert {(a.mode, a.currency, a.code) for a in accounts} == {("test", "IDR", c) for c in PAYMENT_LINES}
    assert sum(lines.values()) == 0


@pytest.mark.django_db
def test_zero_lines_are_left_out():
    merchant = MerchantFactory()

    movement, _ = _post(
        merchant, lines={"gateway_clearing": 5000, "tax_payable": 0, "merchant_payable": -5000}
    )

    assert dict(movement.entries.values_list("account__code", "amount_minor")) == {
        "gateway_clearing": 5000,
        "merchant_payable": -5000,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "lines",
    [
        {"gateway_clearing": 120000, "merchant_payable": -119999},  # off by one
        {"gateway_clearing": 0, "merchant_payable": 0},  # nothing moves
        {},
        {"gateway_clearing": 1.5, "merchant_payable": -1.5},  # not minor units
        {"gateway_clearing": True, "merchant_payable": -1},
    ],
)
def test_lines_that_do_not_balance_raise_and_write_nothing(lines):
    merchant = MerchantFactory()
    before = _ledger_rows()

    with pytest.raises(LedgerError):
        _post(merchant, lines=lines)

    assert _ledger_rows() == before


@pytest.mark.django_db
def test_an_unknown_movement_type_raises():
    with pytest.raises(LedgerError):
        _post(MerchantFactory(), type="bonus")
    assert _ledger_rows()[0] == 0


@pytest.mark.django_db
def test_a_replay_returns_the_first_movement_and_writes_nothing():
    merchant = MerchantFactory()
    first, created = _post(merchant)
    rows = _ledger_rows()

    again, created_again = _post(merchant, lines={"gateway_clearing": 1, "merchant_payable": -1})

    assert created and not created_again
    assert again.pk == first.pk
    assert _ledger_rows() == rows
    assert _balances(merchant) == PAYMENT_LINES  # the replay's different lines were not posted


@pytest.mark.django_db
def test_the_same_source_may_post_each_movement_type_once():
    merchant = MerchantFactory()
    refund = {"customer_credit": 5000, "refunds_payable": -5000}
    paid_out = {"refunds_payable": 5000, "gateway_clearing": -5000}

    _, requested = movement_post(
        merchant_id=merchant.id, mode="test", currency="IDR", type="refund", source_type="refund",
        source_id="ref_1", occurred_at=AT, lines=refund,
    )  # fmt: skip
    _, succeeded = movement_post(
        merchant_id=merchant.id, mode="test", currency="IDR", type="refund_succeeded", source_type="refund",
        source_id="ref_1", occurred_at=AT, lines=paid_out,
    )  # fmt: skip

    assert requested and succeeded
    assert Movement.objects.filter(source_id="ref_1").count() == 2


# ---- movement_reverse ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reversal_posts_the_opposite_lines_and_leaves_the_original():
    merchant = MerchantFactory()
    original, _ = _post(merchant)
    later = datetime(2026, 11, 3, tzinfo=UTC)

    reversal, created = movement_reverse(movement=original, occurred_at=later)
    again, created_again = movement_reverse(movement=original, occurred_at=later)

    assert created and not created_again and again.pk == reversal.pk
    assert reversal.type == "reversal" and reversal.reverses_id == original.id
    assert (reversal.source_type, reversal.source_id, reversal.occurred_at) == (
        "movement",
        original.id,
        later,
    )
    assert dict(reversal.entries.values_list("account__code", "amount_minor")) == {
        code: -amount for code, amount in PAYMENT_LINES.items()
    }
    assert dict(original.entries.values_list("account__code", "amount_minor")) == PAYMENT_LINES
    assert set(_balances(merchant).values()) == {0}


# ---- the database's guards -----------------------------------------------------------------------------------


def _raw_movement(cursor, merchant, *, currency="IDR") -> str:
    movement_id = new_id("txn")
    cursor.execute(
        "INSERT INTO ledger_movement (id, merchant_id, mode, currency, type, source_type, source_id, occurred_at, "
        "created_at, description) VALUES (%s, %s, 'test', %s, 'payment', 'payment', %s, now(), now(), '')",
        [movement_id, merchant.id, currency, new_id("pay")],
    )
    return movement_id


def _raw_entries(cursor, movement_id: str, lines: list[tuple[int, int]]) -> None:
    cursor.executemany(
        "INSERT INTO ledger_entry (movement_id, account_id, amount_minor) VALUES (%s, %s, %s)",
        [(movement_id, account, amount) for account, amount in lines],
    )


@pytest.mark.django_db(transaction=True)
def test_raw_sql_writing_an_unbalanced_movement_fails_at_commit_and_leaves_nothing():
    merchant = MerchantFactory()
    ids = accounts_for(
        merchant_id=merchant.id, mode="test", currency="IDR", codes=["gateway_clearing", "merchant_payable"]
    )

    with pytest.raises(IntegrityError, match="is not balanced: its entries sum to 10"):
        with transaction.atomic():
            with connection.cursor() as cursor:
                unbalanced = _raw_movement(cursor, merchant)
                _raw_entries(
                    cursor, unbalanced, [(ids["gateway_clearing"], 100), (ids["merchant_payable"], -90)]
                )
            # Deferred: inside the transaction the rows are there; the check runs at COMMIT.
            assert Entry.objects.filter(movement_id=unbalanced).count() == 2

    assert not Movement.objects.filter(pk=unbalanced).exists()
    assert not Entry.objects.filter(movement_id=unbalanced).exists()

    with transaction.atomic():  # the same writes, balanced, commit
        with connection.cursor() as cursor:
            balanced = _raw_movement(cursor, merchant)
            _raw_entries(cursor, balanced, [(ids["gateway_clearing"], 100), (ids["merchant_payable"], -100)])
    assert Entry.objects.filter(movement_id=balanced).count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_entry_on_another_currencys_account_fails_at_commit():
    merchant = MerchantFactory()
    idr = accounts_for(merchant_id=merchant.id, mode="test", currency="IDR", codes=["gateway_clearing"])
    usd = accounts_for(merchant_id=merchant.id, mode="test", currency="USD", codes=["merchant_payable"])

    with pytest.raises(IntegrityError, match="another merchant's, mode's or currency's account"):
        with transaction.atomic(), connection.cursor() as cursor:
            movement_id = _raw_movement(cursor, merchant, currency="IDR")
            _raw_entries(
                cursor, movement_id, [(idr["gateway_clearing"], 100), (usd["merchant_payable"], -100)]
            )

    assert not Movement.objects.filter(pk=movement_id).exists()


@pytest.mark.django_db(transaction=True)
def test_an_entry_on_another_merchants_account_fails_at_commit():
    merchant, other = MerchantFactory(), MerchantFactory()
    mine = accounts_for(merchant_id=merchant.id, mode="test", currency="IDR", codes=["gateway_clearing"])
    theirs = accounts_for(merchant_id=other.id, mode="test", currency="IDR", codes=["merchant_payable"])

    with pytest.raises(IntegrityError, match="another merchant's"):
        with transaction.atomic(), connection.cursor() as cursor:
            movement_id = _raw_movement(cursor, merchant)
            _raw_entries(
                cursor, movement_id, [(mine["gateway_clearing"], 100), (theirs["merchant_payable"], -100)]
            )

    assert not Movement.objects.filter(pk=movement_id).exists()


@pytest.mark.django_db
def test_posted_entries_and_movements_are_never_updated_or_deleted():
    merchant = MerchantFactory()
    movement, _ = _post(merchant)

    attempts = [
        lambda: Entry.objects.filter(movement=movement).update(amount_minor=1),
        lambda: Entry.objects.filter(movement=movement).delete(),
        lambda: Movement.objects.filter(pk=movement.pk).update(description="edited"),
        lambda: connection.cursor().execute("DELETE FROM ledger_movement WHERE id = %s", [movement.pk]),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()

    movement.refresh_from_db()
    assert movement.description == "payment pay_1"
    assert dict(movement.entries.values_list("account__code", "amount_minor")) == PAYMENT_LINES


# ---- concurrency ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_postings_for_a_new_currency_create_each_account_once():
    """Eight connections post their first movement for the merchant's USD at the same moment: none of them finds
    the accounts, all insert them; each account exists once and every movement is posted on it."""
    merchant = MerchantFactory()
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def post(index: int) -> None:
        try:
            barrier.wait(timeout=20)
            with transaction.atomic():
                _post(
                    merchant,
                    source_id=f"pay_race{index}",
                    currency="USD",
                    lines={"gateway_clearing": 1000 + index, "merchant_payable": -(1000 + index)},
                )
                time.sleep(0.2)  # hold the transaction open: the others' inserts of the same accounts overlap
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert Movement.objects.filter(merchant=merchant, currency="USD").count() == threads_count
    assert sorted(
        Account.objects.filter(merchant=merchant, currency="USD").values_list("code", flat=True)
    ) == [
        "gateway_clearing",
        "merchant_payable",
    ]
    total = sum(1000 + i for i in range(threads_count))
    assert _balances(merchant, "USD") == {"gateway_clearing": total, "merchant_payable": -total}
