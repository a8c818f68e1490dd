"""Ledger benchmark: what the ledger costs on the payment-application path, that invoice creation posts nothing,
and how long a balance read takes as a merchant's history grows (docs/adr/0045).

    PAYTRUST_ALLOW_DEV_SECRET=true FIELD_ENCRYPTION_KEYS=<fernet key> \
    .venv/bin/python bench/ledger_bench.py [--payments 300] [--rounds 6] [--invoices 200] \
        [--history 100000] [--server postgresql://postgres@127.0.0.1:5432] [--db paytrust_bench_ledger_cost]

What it does: creates the scratch database (`--db`) on `--server` if missing and migrates it (DATABASE_URL is set
to it for this process only); a merchant through the real service with its sandbox account (IDR fee 1 % + 500).

1. Payment application. 2 × `--payments` invoices of IDR 100,000 at 11 % tax (fee 1,500, total 112,500), each
   with a payment initiated through `payment_initiate` (not timed). Then `payment_apply_gateway_status` reports each
   payment succeeded with 120,000 received (7,500 overpaid: the `payment` movement has its five lines) - the
   webhook/reconciliation code path: lock, apply to the invoice, PaymentApplication, event, and the ledger
   posting. Two arms, alternated in `--rounds` rounds of equal size on the same database in the same run:
   `ledger` (the code as it is) and `baseline` (the same call with `bookkeeping.post_payment_applied` replaced by a
   no-op, in this process only). Each call is timed; the `ledger` arm also times `post_payment_applied` itself
   (wrapped, its share of the call). The baseline leaves those invoices without ledger rows: it is a scratch
   database.
2. Invoice creation. Counts ledger movements/entries/accounts before and after `--invoices` `invoice_create`
   calls, and records every SQL statement of one creation: none may touch a ledger_ table.
3. Balance read. Loads `--history` more `payment` movements (five entries each) for a second merchant with COPY
   (the deferred balance trigger checks every one at each chunk's COMMIT), VACUUM ANALYZE, then times
   `ledger.selectors.account_balances` with the API's account codes (what GET /v1/balance runs: four of the five
   entries of each payment) for that merchant, with EXPLAIN (ANALYZE, BUFFERS).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")

PAYMENT_LINES = {  # a payment of 120000 on a 112500 invoice: tax 11000, fee 1500, 7500 overpaid
    "gateway_clearing": 120000,
    "tax_payable": -11000,
    "service_fees": -1500,
    "customer_credit": -7500,
    "merchant_payable": -100000,
}


def ensure_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    return f"{server}/{name}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---- 1. payment application ----------------------------------------------------------------------------------


def prepare_payments(merchant, account, count: int) -> list:
    from django.utils import timezone

    from invoices.calc import CustomerIn, LineItemIn
    from invoices.services import invoice_create
    from payments.services import payment_initiate

    payments = []
    for _ in range(count):
        invoice = invoice_create(
            merchant=merchant,
            mode="test",
            currency="IDR",
            gateway=account.id,
            line_items=[LineItemIn("Course", 1, "100000", "0.11")],
            customer=CustomerIn("Budi", "budi@example.com", "+628123456789"),
            expires_at=timezone.now() + timedelta(days=2),
        )
        payments.append(payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment)
    return payments


def apply_succeeded(payment) -> float:
    from django.utils import timezone

    from gateways import base as gw
    from payments.services import GatewayStatusUpdate, payment_apply_gateway_status

    started = time.perf_counter()
    outcome = payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=gw.GatewayOutcome.SUCCEEDED,
            amount_minor=120000,
            currency="IDR",
            occurred_at=timezone.now(),
        ),
        source="bench",
    )
    elapsed = time.perf_counter() - started
    assert outcome.changed and outcome.payment.status == "succeeded", outcome.note
    return elapsed


def bench_application(merchant, account, *, payments: int, rounds: int) -> None:
    from ledger.models import Entry, Movement
    from payments.services import bookkeeping

    print(
        f"\n1. payment_apply_gateway_status, succeeded: {payments} calls per arm in {rounds} alternated rounds"
    )
    ledger_payments = prepare_payments(merchant, account, payments)
    baseline_payments = prepare_payments(merchant, account, payments)
    real_post = bookkeeping.post_payment_applied
    posting: list[float] = []

    def timed_post(**kwargs):
        started = time.perf_counter()
        real_post(**kwargs)
        posting.append(time.perf_counter() - started)

    def no_post(**kwargs):
        return None

    times = {"ledger": [], "baseline": []}
    per_round = payments // rounds
    movements_before, entries_before = Movement.objects.count(), Entry.objects.count()
    for index in range(rounds):
        chunk = slice(index * per_round, (index + 1) * per_round if index < rounds - 1 else payments)
        arms = [("ledger", ledger_payments[chunk]), ("baseline", baseline_payments[chunk])]
        for arm, batch in arms if index % 2 == 0 else reversed(arms):
            bookkeeping.post_payment_applied = timed_post if arm == "ledger" else no_post
            try:
                times[arm] += [apply_succeeded(p) for p in batch]
            finally:
                bookkeeping.post_payment_applied = real_post
    posted = Movement.objects.count() - movements_before, Entry.objects.count() - entries_before
    print(f"   ledger rows written: {posted[0]} movements, {posted[1]} entries (ledger arm only)")
    print("   arm        calls   mean       median     p95        p99")
    for arm, values in times.items():
        print(
            f"   {arm:<9} {len(values):>6}   {ms(statistics.mean(values)):>9}  {ms(statistics.median(values)):>9}"
            f"  {ms(pct(values, 95)):>9}  {ms(pct(values, 99)):>9}"
        )
    extra = statistics.mean(times["ledger"]) - statistics.mean(times["baseline"])
    share = statistics.mean(posting) / statistics.mean(times["ledger"])
    print(
        f"   difference of the means: {ms(extra)} ({extra / statistics.mean(times['baseline']):+.1%});"
        f" post_payment_applied itself: mean {ms(statistics.mean(posting))}, median"
        f" {ms(statistics.median(posting))}, p95 {ms(pct(posting, 95))} = {share:.1%} of the ledger arm's call"
        " (the COMMIT-time balance trigger is in the call, not in this share)"
    )


# ---- 2. invoice creation -------------------------------------------------------------------------------------


def bench_invoices(merchant, account, *, count: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from invoices.calc import CustomerIn, LineItemIn
    from invoices.services import invoice_create
    from ledger.models import Account, Entry, Movement

    def create():
        return invoice_create(
            merchant=merchant,
            mode="test",
            currency="IDR",
            gateway=account.id,
            line_items=[LineItemIn("Course", 1, "100000", "0.11")],
            customer=CustomerIn("Budi", "budi@example.com", "+628123456789"),
            expires_at=timezone.now() + timedelta(days=2),
        )

    def counts():
        return Movement.objects.count(), Entry.objects.count(), Account.objects.count()

    before = counts()
    started = time.perf_counter()
    for _ in range(count):
        create()
    elapsed = time.perf_counter() - started
    after = counts()
    with CaptureQueriesContext(connection) as captured:
        create()
    ledger_sql = [q["sql"] for q in captured.captured_queries if "ledger_" in (q["sql"] or "")]
    print(f"\n2. invoice_create x {count} ({ms(elapsed / count)} each)")
    print(f"   ledger (movements, entries, accounts) before {before}, after {after}")
    print(
        f"   one creation: {len(captured.captured_queries)} SQL statements, {len(ledger_sql)} touching ledger_"
    )


# ---- 3. balance read -----------------------------------------------------------------------------------------


def load_history(merchant, *, first: int, count: int) -> None:
    from django.db import connection, transaction

    from ledger.services import accounts_for
    from paytrust.ids import new_id

    accounts = accounts_for(merchant_id=merchant.id, mode="live", currency="IDR", codes=list(PAYMENT_LINES))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    chunk = 10_000
    started = time.perf_counter()
    for offset in range(0, count, chunk):
        movements, entries = io.StringIO(), io.StringIO()
        for index in range(first + offset, first + min(count, offset + chunk)):
            movement_id = new_id("txn")
            at = (start + timedelta(seconds=index * 30)).isoformat()
            movements.write(
                f"{movement_id}\t{merchant.id}\tlive\tIDR\tpayment\tpayment\tpay_bench{index}\t{at}\t{at}\tbench\n"
            )
            for code, amount in PAYMENT_LINES.items():
                entries.write(f"{movement_id}\t{accounts[code]}\t{amount}\n")
        with transaction.atomic(), connection.cursor() as cursor:
            columns = "id, merchant_id, mode, currency, type, source_type, source_id, occurred_at, created_at, description"
            with cursor.copy(f"COPY ledger_movement ({columns}) FROM STDIN") as copy:
                copy.write(movements.getvalue())
            with cursor.copy("COPY ledger_entry (movement_id, account_id, amount_minor) FROM STDIN") as copy:
                copy.write(entries.getvalue())
    print(
        f"   loaded {count:,} movements ({count * len(PAYMENT_LINES):,} entries) in {time.perf_counter() - started:.1f} s"
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE ledger_entry")
        cursor.execute("VACUUM ANALYZE ledger_account")
        cursor.execute("VACUUM ANALYZE ledger_movement")


def bench_balance(*, history: int, runs: int = 7) -> None:
    from django.db import connection

    from gateways.services import merchant_onboard
    from ledger.models import Entry
    from ledger.selectors import account_balances, account_balances_query
    from merchants.models import Merchant

    print(
        f"\n3. balance read (ledger.selectors.account_balances) over a merchant's history of {history:,} movements"
    )
    merchant = Merchant.objects.filter(name="Ledger bench history").first() or merchant_onboard(
        name="Ledger bench history"
    )
    have = Entry.objects.filter(account__merchant=merchant).count() // len(PAYMENT_LINES)
    if have < history:
        load_history(merchant, first=have, count=history - have)
    else:
        print(f"   reusing {have:,} movements already loaded")
    from ledger.api import BALANCE_FIGURES

    codes = list(BALANCE_FIGURES.values())  # what GET /v1/balance reads
    account_balances(merchant=merchant, mode="live", codes=codes)  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        balances = account_balances(merchant=merchant, mode="live", codes=codes)
        samples.append(time.perf_counter() - started)
    print(
        f"   {runs} runs: median {ms(statistics.median(samples))}, max {ms(max(samples))}; balances {balances}"
    )
    qs = account_balances_query(merchant=merchant, mode="live", codes=codes)
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        print("   " + "\n   ".join(row[0] for row in cursor.fetchall()))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=300, help="payment applications per arm")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--history", type=int, default=100_000, help="movements of the balance-read merchant")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="paytrust_bench_ledger_cost")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.server, args.db)
    os.environ.setdefault("PAYTRUST_ALLOW_DEV_SECRET", "true")
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "rLNTU-eyDlvYDc4o1gMLqW9B6Wv4ST1ZnWrcs5oudIY=")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env=os.environ
    )

    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from gateways import services as gateway_services
    from gateways.models import GatewayAccount

    merchant = gateway_services.merchant_onboard(name=f"Ledger bench {datetime.now(UTC):%H%M%S}")
    account = gateway_services.gateway_account_update(
        account=GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="sandbox"),
        fees=[{"currency": "IDR", "percent": "0.01", "fixed": "500"}],
    )
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f}")
    bench_application(merchant, account, payments=args.payments, rounds=args.rounds)
    bench_invoices(merchant, account, count=args.invoices)
    bench_balance(history=args.history)
    print(f"\ndone, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
