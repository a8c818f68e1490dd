"""verify_ledger benchmark: `manage.py verify_ledger` over ~1,000,000 ledger movements (~4 M entries).

    .venv/bin/python bench/verify_ledger_bench.py [--movements 1000000] [--keep] \
        [--server postgresql://postgres@127.0.0.1:5432] [--db paytrust_bench_ledger]

What it does: (re)creates the scratch database `--db` on `--server` and migrates it (DATABASE_URL is set to it for
this process and its children only); creates 4 merchants, their gateway accounts and one invoice per (merchant,
mode, currency, gateway) through the real services; then fills it with
SQL alone (generate_series, INSERT … SELECT, in one session with `session_replication_role = replica` so the
ledger's per-row triggers do not run during the load - verify_ledger checks what they would have):

- P payments (succeeded, spread over 2025), each with its invoices_paymentapplication fact (1 % overpaid, fee 3 %,
  tax 1/11 of the rest on most) and its `payment` movement (4-5 entries: gateway_clearing, tax_payable,
  service_fees, merchant_payable, customer_credit);
- 2.5 % of them refunded (a Refund row, `refund` + `refund_succeeded` movements), 0.5 % charged back (`chargeback`),
  3 % authorized first (`authorization` + `capture` movements);

P = movements / 1.115, so the movements come to about `--movements`. VACUUM ANALYZE (what autovacuum does after a
load), then times, as subprocesses, `manage.py verify_ledger` (everything), `--since` the last month of data and
`--merchant` the smallest merchant; then breaks one entry (triggers bypassed), checks verify_ledger exits 1
naming it, and mends it. The database is dropped at the end unless `--keep` (`--reuse` times a kept one again). Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")

CODES = (
    "gateway_clearing",
    "gateway_authorized",
    "merchant_payable",
    "merchant_pending",
    "tax_payable",
    "service_fees",
    "customer_credit",
    "refunds_payable",
)

LOAD_SQL = [
    # the payments to make, with their figures; deterministic (setseed)
    "SELECT setseed(0.2025)",
    """
    CREATE UNLOGGED TABLE bench_pay AS
    SELECT g.i, c.merchant_id, c.mode, c.currency, c.gateway, c.account_id, c.invoice_id,
           g.paid_at, g.amount, g.overpaid, (g.amount - g.overpaid) * 3 / 100 AS fee,
           CASE WHEN g.r1 < 0.8 THEN ((g.amount - g.overpaid) - (g.amount - g.overpaid) * 3 / 100) / 11 ELSE 0 END
               AS tax,
           CASE WHEN g.r2 < 0.025 THEN g.amount / 2 WHEN g.r2 < 0.03 THEN g.amount / 3 ELSE 0 END AS refunded,
           g.r2 >= 0.025 AND g.r2 < 0.03 AS chargeback,
           g.r3 < 0.03 AS authorized
      FROM (SELECT i, (random() * (%(combos)s - 1))::int AS k,
                   timestamptz '2025-01-01' + random() * interval '365 days' AS paid_at,
                   1000 + (random() * 1000000)::bigint AS amount,
                   CASE WHEN random() < 0.01 THEN 100 ELSE 0 END AS overpaid,
                   random() AS r1, random() AS r2, random() AS r3
              FROM generate_series(1, %(payments)s) i) g
      JOIN bench_combo c ON c.k = g.k
    """,
    """
    INSERT INTO payments_payment (id, created_at, updated_at, merchant_id, mode, invoice_id, installment_number,
        gateway_account_id, gateway, status, currency, amount_minor, amount_received_minor, amount_refunded_minor,
        gateway_reference, payment_url, pain002_status, pain002_reason, failure_code, failure_message,
        succeeded_at, gateway_status_at, reconcile_attempts, received_on_closed_invoice)
    SELECT 'pay_b' || lpad(i::text, 10, '0'), paid_at, paid_at, merchant_id, mode, invoice_id, 1, account_id, gateway,
           CASE WHEN refunded > 0 THEN 'partially_refunded' ELSE 'succeeded' END, currency, amount, amount, refunded,
           '', '', 'ACSC', '', '', '', paid_at, paid_at, 0, false
      FROM bench_pay
    """,
    """
    INSERT INTO invoices_paymentapplication (payment_id, invoice_id, merchant_id, mode, gateway, currency,
        amount_minor, applied_minor, overpaid_minor, tax_minor, fee_minor, taxable_minor, target_installment,
        allocations, paid_at, created_at)
    SELECT 'pay_b' || lpad(i::text, 10, '0'), invoice_id, merchant_id, mode, gateway, currency, amount,
           amount - overpaid, overpaid, tax, fee, amount - overpaid - tax - fee, 1, '[]', paid_at, paid_at
      FROM bench_pay
    """,
    """
    INSERT INTO payments_refund (id, created_at, updated_at, payment_id, merchant_id, mode, currency, amount_minor,
        status, origin, chargeback, gateway_refund_reference, succeeded_at)
    SELECT 'ref_b' || lpad(i::text, 10, '0'), paid_at + interval '3 days', paid_at + interval '3 days',
           'pay_b' || lpad(i::text, 10, '0'), merchant_id, mode, currency, refunded, 'succeeded', 'gateway',
           chargeback, '', paid_at + interval '3 days'
      FROM bench_pay WHERE refunded > 0
    """,
    # movements: (type, source, occurred_at) per payment / refund
    """
    CREATE UNLOGGED TABLE bench_mov AS
    SELECT 'txn_b' || lpad(i::text, 10, '0') || 'p' AS id, i, 'payment' AS type, 'payment' AS source_type,
           'pay_b' || lpad(i::text, 10, '0') AS source_id, paid_at AS occurred_at FROM bench_pay
    UNION ALL
    SELECT 'txn_b' || lpad(i::text, 10, '0') || 'a', i, 'authorization', 'payment', 'pay_b' || lpad(i::text, 10, '0'),
           paid_at - interval '1 hour' FROM bench_pay WHERE authorized
    UNION ALL
    SELECT 'txn_b' || lpad(i::text, 10, '0') || 'c', i, 'capture', 'payment', 'pay_b' || lpad(i::text, 10, '0'),
           paid_at FROM bench_pay WHERE authorized
    UNION ALL
    SELECT 'txn_b' || lpad(i::text, 10, '0') || 'r', i, 'refund', 'refund', 'ref_b' || lpad(i::text, 10, '0'),
           paid_at + interval '3 days' FROM bench_pay WHERE refunded > 0 AND NOT chargeback
    UNION ALL
    SELECT 'txn_b' || lpad(i::text, 10, '0') || 's', i, 'refund_succeeded', 'refund',
           'ref_b' || lpad(i::text, 10, '0'), paid_at + interval '3 days'
      FROM bench_pay WHERE refunded > 0 AND NOT chargeback
    UNION ALL
    SELECT 'txn_b' || lpad(i::text, 10, '0') || 'k', i, 'chargeback', 'refund', 'ref_b' || lpad(i::text, 10, '0'),
           paid_at + interval '3 days' FROM bench_pay WHERE chargeback
    """,
    """
    INSERT INTO ledger_movement (id, merchant_id, mode, currency, type, source_type, source_id, occurred_at,
        created_at, description)
    SELECT m.id, p.merchant_id, p.mode, p.currency, m.type, m.source_type, m.source_id, m.occurred_at,
           m.occurred_at, ''
      FROM bench_mov m JOIN bench_pay p ON p.i = m.i
    """,
    # entries: the posting rules of payments/services/bookkeeping.py, zero lines left out
    """
    INSERT INTO ledger_entry (movement_id, account_id, amount_minor)
    SELECT l.movement_id, a.id, l.amount
      FROM (
        SELECT m.id AS movement_id, p.merchant_id, p.mode, p.currency, v.code, v.amount
          FROM bench_mov m JOIN bench_pay p ON p.i = m.i
          CROSS JOIN LATERAL (VALUES
              ('gateway_clearing', CASE m.type WHEN 'payment' THEN p.amount
                                              WHEN 'refund_succeeded' THEN -p.refunded
                                              WHEN 'chargeback' THEN -p.refunded ELSE 0 END),
              ('tax_payable', CASE m.type WHEN 'payment' THEN -p.tax ELSE 0 END),
              ('service_fees', CASE m.type WHEN 'payment' THEN -p.fee ELSE 0 END),
              ('customer_credit', CASE m.type WHEN 'payment' THEN -p.overpaid ELSE 0 END),
              ('merchant_payable', CASE m.type WHEN 'payment' THEN -(p.amount - p.tax - p.fee - p.overpaid)
                                              WHEN 'refund' THEN p.refunded
                                              WHEN 'chargeback' THEN p.refunded ELSE 0 END),
              ('refunds_payable', CASE m.type WHEN 'refund' THEN -p.refunded
                                             WHEN 'refund_succeeded' THEN p.refunded ELSE 0 END),
              ('gateway_authorized', CASE m.type WHEN 'authorization' THEN p.amount
                                                WHEN 'capture' THEN -p.amount ELSE 0 END),
              ('merchant_pending', CASE m.type WHEN 'authorization' THEN -p.amount
                                              WHEN 'capture' THEN p.amount ELSE 0 END)
          ) v(code, amount)
         WHERE v.amount <> 0
      ) l
      JOIN ledger_account a ON a.merchant_id = l.merchant_id AND a.mode = l.mode AND a.currency = l.currency
                           AND a.code = l.code
    """,
    "DROP TABLE bench_mov",
    "DROP TABLE bench_pay",
]


def setup_objects() -> list[tuple[str, str, str, str, str, str]]:
    """4 merchants, each with its test sandbox account (IDR) and a live xendit account (IDR, USD), and one invoice
    per (merchant, mode, currency, gateway), through the real services: the rows the payments point at."""
    from datetime import UTC, datetime, timedelta

    from gateways.models import GatewayAccount
    from gateways.services import gateway_account_create, merchant_onboard
    from invoices.calc import CustomerIn, LineItemIn
    from invoices.services import invoice_create

    combos = []
    for index in range(4):
        merchant = merchant_onboard(name=f"Bench merchant {index + 1}")
        accounts = [
            GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="sandbox"),
            gateway_account_create(
                merchant=merchant,
                mode="live",
                gateway="xendit",
                credentials={
                    "secret_key": "xnd_production_" + "b" * 40,
                    "callback_token": "cbtok_" + "c" * 30,
                },
                currencies=["IDR", "USD"],
            ),
        ]
        for account in accounts:
            for currency in account.currencies:
                invoice = invoice_create(
                    merchant=merchant,
                    mode=account.mode,
                    currency=currency,
                    gateway=account.id,
                    line_items=[LineItemIn("Bench", 1, "1000", "0.11")],
                    customer=CustomerIn("Bench", "bench@example.com", ""),
                    expires_at=datetime.now(UTC) + timedelta(days=2),
                )
                combos.append((merchant.id, account.mode, currency, account.gateway, account.id, invoice.id))
    return combos


def recreate_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"created database {name}")
    return f"{server}/{name}"


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"dropped database {name}")


def load(dsn: str, combos, movements: int) -> None:
    import psycopg

    payments = round(movements / 1.115)
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")  # no per-row triggers during the load
        conn.execute(
            "CREATE UNLOGGED TABLE bench_combo (k int, merchant_id text, mode text, currency text, gateway text, "
            "account_id text, invoice_id text)"
        )
        with conn.cursor().copy("COPY bench_combo FROM STDIN") as copy:
            for k, (merchant_id, mode, currency, gateway, account_id, invoice_id) in enumerate(combos):
                copy.write_row((k, merchant_id, mode, currency, gateway, account_id, invoice_id))
        conn.execute(
            "INSERT INTO ledger_account (merchant_id, mode, currency, code, created_at) "
            "SELECT DISTINCT c.merchant_id, c.mode, c.currency, code, now() FROM bench_combo c, unnest(%s::text[]) code "
            "ON CONFLICT DO NOTHING",
            [list(CODES)],
        )
        for sql in LOAD_SQL:
            step = time.perf_counter()
            conn.execute(sql, {"combos": len(combos), "payments": payments} if "%(" in sql else None)
            print(f"  {' '.join(sql.split())[:70]} ({time.perf_counter() - step:.0f} s)", flush=True)
        conn.execute("DROP TABLE bench_combo")
        conn.commit()
    print(f"loaded {payments:,} payments in {time.perf_counter() - t0:.0f} s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        step = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"VACUUM ANALYZE in {time.perf_counter() - step:.0f} s")
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
            for table in ("payments_payment", "payments_refund", "ledger_movement", "ledger_entry")
        }
    print("rows:", json.dumps(counts))


def verify(*args: str) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_ledger", "-v", "2", *args],
        env=os.environ,
        capture_output=True,
        text=True,
    )
    return done.returncode, time.perf_counter() - t0, (done.stdout + done.stderr).strip()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="paytrust_bench_ledger")
    parser.add_argument("--keep", action="store_true", help="keep the database (default: dropped at the end)")
    parser.add_argument("--reuse", action="store_true", help="time a database kept by --keep (no load)")
    args = parser.parse_args()

    if args.reuse:
        dsn = os.environ["DATABASE_URL"] = f"{args.server}/{args.db}"
    else:
        dsn = os.environ["DATABASE_URL"] = recreate_database(args.server, args.db)
    os.environ.setdefault("PAYTRUST_ALLOW_DEV_SECRET", "true")
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "rLNTU-eyDlvYDc4o1gMLqW9B6Wv4ST1ZnWrcs5oudIY=")
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env=os.environ
        )
        import django

        django.setup()
        import logging

        logging.disable(logging.INFO)
        if not args.reuse:
            load(dsn, setup_objects(), args.movements)

        import psycopg

        with psycopg.connect(dsn) as conn:
            smallest = conn.execute(
                "SELECT merchant_id FROM ledger_movement GROUP BY 1 ORDER BY count(*) LIMIT 1"
            ).fetchone()[0]
        runs = [
            ("everything", ()),
            ("--since 2025-12-01", ("--since", "2025-12-01")),
            (f"--merchant {smallest} (the smallest)", ("--merchant", smallest)),
        ]
        for label, extra in runs:
            code, seconds, output = verify(*extra)
            print(f"\nverify_ledger {label}: exit {code}, {seconds:.1f} s wall (python start-up included)")
            print(output[-1500:])
            if code != 0:
                return 1

        with psycopg.connect(dsn) as conn:  # one broken entry, around the append-only trigger
            conn.execute("SET session_replication_role = replica")
            broken = conn.execute(
                "UPDATE ledger_entry SET amount_minor = amount_minor + 1 "
                "WHERE id = (SELECT min(id) FROM ledger_entry) RETURNING movement_id"
            ).fetchone()[0]
            conn.commit()
        try:
            code, seconds, output = verify()
        finally:
            with psycopg.connect(dsn) as conn:  # mend it, for --keep / --reuse
                conn.execute("SET session_replication_role = replica")
                conn.execute(
                    "UPDATE ledger_entry SET amount_minor = amount_minor - 1 WHERE id = (SELECT min(id) FROM ledger_entry)"
                )
                conn.commit()
        found = f"movement_unbalanced {broken}" in output
        print(
            f"\nverify_ledger after breaking one entry of {broken}: exit {code}, named: {found}, {seconds:.1f} s"
        )
        print("\n".join(line for line in output.splitlines() if not line.startswith("{"))[:1500])
        return 0 if code == 1 and found else 1
    finally:
        if not args.keep:
            drop_database(args.server, args.db)


if __name__ == "__main__":
    sys.exit(main())
