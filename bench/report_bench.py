"""Financial report benchmark: the report over 1,000,000 (SPEC §16: < 1 s) to 10,000,000 payments (issue 17:
< 300 ms, any filter), from the daily rollup and from the raw facts, checked equal.

    flock /tmp/heavy.lock .venv/bin/python bench/report_bench.py --payments 10000000 --runs 20 --raw-runs 5 \
        --db paytrust_bench_report10m --drop
    [--reload] [--server postgresql://postgres@127.0.0.1:5432]

What it does: creates the scratch database (`--db`) on `--server` if missing and migrates it (DATABASE_URL is set
to it for this process only); creates 4 merchants with their gateway accounts (sandbox/xendit in test mode,
xendit/midtrans in live mode) and one invoice per merchant, mode, currency and gateway through the real services;
then, unless the facts are already loaded (or with `--reload`), loads N payments with PostgreSQL COPY, in time
order over the year 2025: `payments_payment`, their `invoices_paymentapplication` facts (tax, fee, taxable, 1 %
overpaid), 1-2 `invoices_paymentapplicationtax` rows each (rates 0 / 0.06 / 0.1 / 0.11), and for 2 % of them a
succeeded `payments_refund` of half the amount paid out 0-3 days later; across merchants (55 / 25 / 15 / 5 %),
modes (live 95 %), currencies (IDR 60 %, USD 30 %, MYR 10 %) and gateways. Then the rollup is built from those
facts by the same SQL `manage.py report_rollup --rebuild` runs (payments.services.report_rollup.REBUILD_SQL), and
VACUUM ANALYZE (what autovacuum does after a load: sets the visibility map that index-only scans need).

It checks the whole rollup against a recomputation from every fact (`report_rollup_check`, what
`manage.py report_rollup` runs), then times `reporting.selectors.financial_report` - the SQL aggregates plus the
Python assembly the API does - from the rollup (`--runs` times) and from the raw facts (`from_facts=True`,
`--raw-runs` times), one warm-up each, for each filter the report accepts (merchant month/year, currency,
gateway, both, test mode, a period cut at non-midnight times, 12 hours inside one day, all merchants), reports
p50/p99 (nearest rank) and whether the two reports are equal, and prints the plans of a few. Exit status 1 on
any difference. `--drop` drops the scratch database at the end. Everything shares the machine with whatever else
runs on it.
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)
MERCHANT_WEIGHTS = (55, 25, 15, 5)
RATES = (Decimal("0"), Decimal("0.06"), Decimal("0.1"), Decimal("0.11"))
XENDIT = {"secret_key": "xnd_development_" + "b" * 40, "callback_token": "cbtok_" + "c" * 30}
MIDTRANS = {"server_key": "SB-Mid-server-" + "d" * 24, "client_key": "SB-Mid-client-" + "e" * 24}
# Live accounts take live keys only (issue 11: a key of the other mode is refused).
XENDIT_LIVE = {"secret_key": "xnd_production_" + "b" * 40, "callback_token": "cbtok_" + "c" * 30}
MIDTRANS_LIVE = {"server_key": "Mid-server-" + "d" * 24, "client_key": "Mid-client-" + "e" * 24}


def ensure_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    return f"{server}/{name}"


def setup_objects():
    """Merchants, gateway accounts and one invoice per (merchant, mode, currency, gateway): the rows the facts
    point at. Through the real services; idempotent (reuses what exists)."""
    from gateways.models import GatewayAccount
    from gateways.services import gateway_account_create, merchant_onboard
    from invoices.calc import CustomerIn, LineItemIn
    from invoices.models import Invoice
    from invoices.services import invoice_create
    from merchants.models import Merchant

    combos = []  # (merchant, mode, currency, account, invoice)
    for index in range(len(MERCHANT_WEIGHTS)):
        name = f"Bench merchant {index + 1}"
        merchant = Merchant.objects.filter(name=name).first() or merchant_onboard(name=name)
        accounts = {
            ("test", "sandbox"): GatewayAccount.objects.get(
                merchant=merchant, mode="test", gateway="sandbox"
            ),
        }
        for mode, gateway, credentials, currencies in (
            ("test", "xendit", XENDIT, ["IDR", "USD"]),
            ("live", "xendit", XENDIT_LIVE, ["IDR", "USD", "MYR"]),
            ("live", "midtrans", MIDTRANS_LIVE, ["IDR"]),
        ):
            account = GatewayAccount.objects.filter(merchant=merchant, mode=mode, gateway=gateway).first()
            accounts[(mode, gateway)] = account or gateway_account_create(
                merchant=merchant, mode=mode, gateway=gateway, credentials=credentials, currencies=currencies
            )
        for (mode, gateway), account in accounts.items():
            for currency in account.currencies:
                invoice = Invoice.objects.filter(
                    merchant=merchant, mode=mode, currency=currency, gateway_account=account
                ).first() or invoice_create(
                    merchant=merchant,
                    mode=mode,
                    currency=currency,
                    gateway=account.id,
                    line_items=[LineItemIn("Bench", 1, "1000", "0.11")],
                    customer=CustomerIn("Bench", "bench@example.com", ""),
                    expires_at=datetime.now(UTC) + timedelta(days=2),
                )
                combos.append((merchant.id, mode, currency, gateway, account.id, invoice.id))
    return combos


def _pick_combo(rng: random.Random, combos_by_merchant, merchant_index: int):
    mode = "live" if rng.random() < 0.95 else "test"
    r = rng.random()
    currency = "IDR" if r < 0.6 else ("USD" if r < 0.9 else "MYR")
    options = [c for c in combos_by_merchant[merchant_index] if c[1] == mode and c[2] == currency]
    if not options:  # MYR in test mode has no account: fall back to IDR
        options = [c for c in combos_by_merchant[merchant_index] if c[1] == mode and c[2] == "IDR"]
    return rng.choice(options)


def load(n: int, combos, seed: int = 20251) -> None:
    """N payments in time order over the year (so the report indexes grow at their ends, not at random pages),
    their facts, and 2 % of them refunded: one SUCCEEDED `payments_refund` row each, paid out 0-3 days later."""
    from django.db import connection

    rng = random.Random(seed)
    merchant_ids: list[str] = []
    for combo in combos:
        if combo[0] not in merchant_ids:
            merchant_ids.append(combo[0])
    options: dict[tuple[int, str, str], list] = {}
    for index, merchant_id in enumerate(merchant_ids):
        for mode in ("live", "test"):
            for currency in ("IDR", "USD", "MYR"):
                found = [c for c in combos if c[0] == merchant_id and c[1] == mode and c[2] == currency]
                # MYR in test mode has no account: IDR instead
                options[(index, mode, currency)] = found or [
                    c for c in combos if c[0] == merchant_id and c[1] == mode and c[2] == "IDR"
                ]
    span = int((YEAR_END - YEAR_START).total_seconds())
    step = span / n
    now = datetime.now(UTC).isoformat()
    merchant_indexes = range(len(MERCHANT_WEIGHTS))
    cumulative = list(itertools.accumulate(MERCHANT_WEIGHTS))

    payments = io.StringIO()
    applications = io.StringIO()
    taxes = io.StringIO()
    refunds = io.StringIO()
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE invoices_collectedday, invoices_collecteddaytax, payments_refundday, payments_refund, "
            "invoices_paymentapplicationtax, invoices_paymentapplication, payments_gatewaycall, "
            "payments_payment CASCADE"
        )
        raw = cursor.connection  # the psycopg connection, for COPY

        def flush() -> None:
            for table, columns, buffer in (
                (
                    "payments_payment",
                    "id, created_at, updated_at, merchant_id, mode, invoice_id, installment_number, "
                    "gateway_account_id, gateway, status, currency, amount_minor, amount_received_minor, "
                    "amount_refunded_minor, gateway_reference, payment_url, pain002_status, pain002_reason, "
                    "failure_code, failure_message, succeeded_at, gateway_status_at, reconcile_attempts, "
                    "received_on_closed_invoice, capture_method, amount_capturable_minor, hold_operation, "
                    "risk_reasons, device_id, review_status, reviewed_by",
                    payments,
                ),
                (
                    "invoices_paymentapplication",
                    "id, payment_id, invoice_id, merchant_id, mode, gateway, currency, amount_minor, "
                    "applied_minor, overpaid_minor, tax_minor, fee_minor, taxable_minor, target_installment, "
                    "allocations, paid_at, created_at",
                    applications,
                ),
                (
                    "invoices_paymentapplicationtax",
                    "application_id, merchant_id, mode, gateway, currency, paid_at, tax_rate, taxable_minor, "
                    "tax_minor",
                    taxes,
                ),
                (
                    "payments_refund",
                    "id, created_at, updated_at, payment_id, merchant_id, mode, currency, amount_minor, status, "
                    "origin, chargeback, reason, metadata, gateway_refund_reference, failure_code, "
                    "failure_message, succeeded_at, reconcile_attempts",
                    refunds,
                ),
            ):
                data = buffer.getvalue()
                if data:
                    with raw.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write(data)
                buffer.seek(0)
                buffer.truncate()

        for i in range(1, n + 1):
            merchant_index = rng.choices(merchant_indexes, cum_weights=cumulative)[0]
            mode = "live" if rng.random() < 0.95 else "test"
            r = rng.random()
            currency = "IDR" if r < 0.6 else ("USD" if r < 0.9 else "MYR")
            merchant_id, mode, currency, gateway, account_id, invoice_id = rng.choice(
                options[(merchant_index, mode, currency)]
            )
            at = YEAR_START + timedelta(seconds=int((i - 1 + rng.random()) * step))
            paid_at = at.isoformat()
            amount = rng.randrange(10_000, 5_000_000) if currency == "IDR" else rng.randrange(100, 200_000)
            overpaid = amount // 10 if rng.random() < 0.01 else 0
            applied = amount - overpaid
            fee = applied * 3 // 100
            rates = rng.sample(RATES, rng.choice((1, 1, 2)))
            tax_rows = []
            tax = 0
            for rate in rates:
                base = (applied - fee) * 10 // 11 // len(rates)
                share = int(base * rate)
                tax_rows.append((rate, base, share))
                tax += share
            taxable = applied - tax - fee
            # the last rate row takes what is left of the taxable base, so the rows add up exactly
            rate, _base, share = tax_rows[-1]
            tax_rows[-1] = (rate, taxable - sum(b for _, b, _ in tax_rows[:-1]), share)
            refunded = amount // 2 if rng.random() < 0.02 else 0
            status = "partially_refunded" if refunded else "succeeded"
            payment_id = f"pay_bench{i:010d}"
            payments.write(
                f"{payment_id}\t{now}\t{now}\t{merchant_id}\t{mode}\t{invoice_id}\t1\t{account_id}\t{gateway}\t"
                f"{status}\t{currency}\t{amount}\t{amount}\t{refunded}\t\t\tACSC\t\t\t\t{paid_at}\t{paid_at}\t0\tf\tautomatic\t0\t\t[]\t\tnone\t\n"
            )
            applications.write(
                f"{i}\t{payment_id}\t{invoice_id}\t{merchant_id}\t{mode}\t{gateway}\t{currency}\t{amount}\t"
                f"{applied}\t{overpaid}\t{tax}\t{fee}\t{taxable}\t1\t[]\t{paid_at}\t{paid_at}\n"
            )
            for rate, base, share in tax_rows:
                taxes.write(
                    f"{i}\t{merchant_id}\t{mode}\t{gateway}\t{currency}\t{paid_at}\t{rate}\t{base}\t{share}\n"
                )
            if refunded:
                paid_out = (at + timedelta(seconds=rng.randrange(3 * 86_400))).isoformat()
                refunds.write(
                    f"ref_bench{i:010d}\t{now}\t{now}\t{payment_id}\t{merchant_id}\t{mode}\t{currency}\t"
                    f"{refunded}\tsucceeded\tgateway\tf\t\t{{}}\trfd-bench-{i}\t\t\t{paid_out}\t0\n"
                )
            if i % 100_000 == 0:
                flush()
                print(f"  loaded {i:,} payments ({time.perf_counter() - t0:.0f} s)", flush=True)
        flush()
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('invoices_paymentapplication', 'id'), "
            "(SELECT max(id) FROM invoices_paymentapplication))"
        )
    print(f"loaded {n:,} payments in {time.perf_counter() - t0:.0f} s")


def build_rollup() -> None:
    """The rollup of the loaded facts, by the same SQL `manage.py report_rollup --rebuild` runs."""
    from django.db import connection, transaction

    from payments.services.report_rollup import REBUILD_SQL, ROLLUP_TABLES

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(ROLLUP_TABLES)}")
        for sql in REBUILD_SQL:
            cursor.execute(sql)
    print(f"rollup rebuilt from the facts in {time.perf_counter() - t0:.0f} s")


def vacuum() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    if db.get("PASSWORD"):
        dsn += f" password={db['PASSWORD']}"
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in (
            "payments_payment",
            "payments_refund",
            "invoices_paymentapplication",
            "invoices_paymentapplicationtax",
            "invoices_collectedday",
            "invoices_collecteddaytax",
            "payments_refundday",
        ):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(f"VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (with fewer than 100 runs, p99 is the slowest run)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def time_report(label: str, runs: int, raw_runs: int, **scope) -> dict:
    """The report from the rollup (`runs` times) and from the raw facts (`raw_runs` times), one warm-up each;
    both reports must be equal."""
    from reporting.selectors import financial_report

    result: dict = {"label": label}
    reports = {}
    for source, n in (("rollup", runs), ("raw", raw_runs)):
        if n == 0:
            continue
        from_facts = source == "raw"
        reports[source] = financial_report(**scope, from_facts=from_facts)  # warm-up
        timings = []
        for _ in range(n):
            t0 = time.perf_counter()
            financial_report(**scope, from_facts=from_facts)
            timings.append((time.perf_counter() - t0) * 1000)
        result[source] = (percentile(timings, 50), percentile(timings, 99), n)
    report = reports["rollup"]
    result["payments"] = sum(c.figures.payments_count for c in report.currencies)
    result["equal"] = reports.get("raw") == report if "raw" in reports else None
    return result


def scan_nodes(**scope) -> list[str]:
    """The scan nodes of EXPLAIN (ANALYZE) for each of the report's three queries (which index, how many rows,
    heap fetches), as run by `financial_report`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reporting.selectors import financial_report

    with CaptureQueriesContext(connection) as captured:
        financial_report(**scope)
    lines = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
            plan = [row[0] for row in cursor.fetchall()]
            table = query["sql"].split(" FROM ", 1)[1].split()[0].strip('"')
            scans = [line.strip() for line in plan if "Scan" in line or "Heap Fetches" in line]
            total = next(line for line in plan if line.startswith("Execution Time"))
            lines.append(f"{table}: {total}")
            lines.extend(f"    {line}" for line in scans)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="timed runs from the rollup per query")
    parser.add_argument("--raw-runs", type=int, default=3, help="timed runs from the raw facts per query")
    parser.add_argument("--reload", action="store_true", help="reload the facts even if they are there")
    parser.add_argument("--drop", action="store_true", help="drop the scratch database at the end")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="paytrust_bench_report")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.server, args.db)
    os.environ.setdefault("PAYTRUST_ALLOW_DEV_SECRET", "true")
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "rLNTU-eyDlvYDc4o1gMLqW9B6Wv4ST1ZnWrcs5oudIY=")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env=os.environ
    )
    try:
        return run(args)
    finally:
        if args.drop:
            from django.db import connections

            connections.close_all()
            import psycopg

            with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
            print(f"dropped database {args.db}")


def run(args) -> int:
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)
    from invoices.models import PaymentApplication
    from merchants.models import Merchant
    from payments.services.report_rollup import report_rollup_check

    combos = setup_objects()
    if args.reload or PaymentApplication.objects.count() != args.payments:
        load(args.payments, combos)
        build_rollup()
        vacuum()
    else:
        print(f"reusing the {args.payments:,} payments already loaded (--reload to reload)")

    t0 = time.perf_counter()
    differences = report_rollup_check()
    print(
        f"report_rollup check (rollup vs recomputation from every fact, one snapshot): "
        f"{len(differences)} difference(s) in {time.perf_counter() - t0:.0f} s"
    )
    for difference in differences[:20]:
        print(f"  {difference}")

    big = Merchant.objects.get(name="Bench merchant 1")
    month = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
    year = {"start": YEAR_START, "end": YEAR_END}
    cut = {"start": YEAR_START + timedelta(hours=6, minutes=30), "end": YEAR_END - timedelta(hours=5)}
    day_cut = {"start": datetime(2025, 6, 3, 8, tzinfo=UTC), "end": datetime(2025, 6, 3, 20, tzinfo=UTC)}
    queries = [
        ("merchant-month", {"merchant": big, "mode": "live", "start": month[0], "end": month[1]}),
        ("merchant-year", {"merchant": big, "mode": "live", **year}),
        ("merchant-year currency=IDR", {"merchant": big, "mode": "live", **year, "currency": "IDR"}),
        ("merchant-year gateway=midtrans", {"merchant": big, "mode": "live", **year, "gateway": "midtrans"}),
        (
            "merchant-year currency=USD gateway=xendit",
            {"merchant": big, "mode": "live", **year, "currency": "USD", "gateway": "xendit"},
        ),
        ("merchant-year, test mode", {"merchant": big, "mode": "test", **year}),
        ("merchant-year cut at 06:30 / 19:00", {"merchant": big, "mode": "live", **cut}),
        ("merchant, 12 h inside one day", {"merchant": big, "mode": "live", **day_cut}),
        ("all merchants year (admin)", {"merchant": None, "mode": "live", **year}),
        ("all merchants year currency=IDR", {"merchant": None, "mode": "live", **year, "currency": "IDR"}),
        ("all merchants year cut", {"merchant": None, "mode": "live", **cut}),
    ]
    load_avg = os.getloadavg()
    results = [time_report(label, args.runs, args.raw_runs, **scope) for label, scope in queries]
    load_after = os.getloadavg()
    print(
        f"\n{args.payments:,} payments loaded; load average before {load_avg[0]:.1f}, after {load_after[0]:.1f}"
    )
    print("| query | payments aggregated | rollup p50 | rollup p99 | raw p50 | raw p99 | equal to raw |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        raw = r.get("raw")
        print(
            f"| {r['label']} | {r['payments']:,} | {r['rollup'][0]:.1f} ms | {r['rollup'][1]:.1f} ms | "
            + (f"{raw[0]:.0f} ms | {raw[1]:.0f} ms | " if raw else "- | - | ")
            + f"{r['equal']} |"
        )
    print(f"(rollup: {args.runs} runs per query, raw: {args.raw_runs}; p99 = nearest rank)")
    for label, scope in (queries[0], queries[1], queries[6], queries[8]):
        print(f"\nplans (rollup), {label}:")
        print("\n".join(scan_nodes(**scope)))
    ok = not differences and all(r["equal"] is not False for r in results)
    print("\nEXACT: rollup equals the raw facts" if ok else "\nMISMATCH between rollup and raw facts")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
