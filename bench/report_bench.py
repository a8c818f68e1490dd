"""Financial report benchmark: the report over 1,000,000 payments (SPEC §16: < 1 s).

    PAYTRUST_ALLOW_DEV_SECRET=true FIELD_ENCRYPTION_KEYS=<fernet key> \
    .venv/bin/python bench/report_bench.py [--payments 1000000] [--runs 7] [--reload] \
        [--server postgresql://postgres@127.0.0.1:5432] [--db paytrust_bench_report]

What it does: creates the scratch database (`--db`) on `--server` if missing and migrates it (DATABASE_URL is set
to it for this process only); creates 4 merchants with their gateway accounts (sandbox/xendit in test mode,
xendit/midtrans in live mode) and one invoice per merchant, mode, currency and gateway through the real services;
then, unless the facts are already loaded (or with `--reload`), loads N payments with PostgreSQL COPY:
`payments_payment` (2 % of them refunded), their `invoices_paymentapplication` facts (tax, fee, taxable, 1 %
overpaid) and 1-2 `invoices_paymentapplicationtax` rows each (rates 0 / 0.06 / 0.1 / 0.11), spread uniformly over
the year 2025 across merchants (55 / 25 / 15 / 5 %), modes (live 95 %), currencies (IDR 60 %, USD 30 %, MYR 10 %)
and gateways. Then VACUUM ANALYZE (what autovacuum does after a load: sets the visibility map that index-only
scans need) and times `reporting.selectors.financial_report` - the three SQL aggregates plus the Python
assembly the API does - for:

    merchant-month    the biggest merchant, live, one month            (~45,000 payments)
    merchant-year     the biggest merchant, live, the whole year       (~520,000 payments)
    merchant-year-IDR the same with ?currency=IDR
    all-year          every merchant (the admin page's "All merchants"), live, the whole year (~950,000 payments)

each `--runs` times after one warm-up run; median and max reported, plus EXPLAIN (ANALYZE, BUFFERS) of the
biggest merchant-year aggregate. Everything shares the machine with whatever else runs on it.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
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
    from django.db import connection

    rng = random.Random(seed)
    by_merchant: dict[int, list] = {}
    merchant_ids = []
    for combo in combos:
        if combo[0] not in merchant_ids:
            merchant_ids.append(combo[0])
        by_merchant.setdefault(merchant_ids.index(combo[0]), []).append(combo)
    span = int((YEAR_END - YEAR_START).total_seconds())
    now = datetime.now(UTC).isoformat()

    payments = io.StringIO()
    applications = io.StringIO()
    taxes = io.StringIO()
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE invoices_paymentapplicationtax, invoices_paymentapplication, payments_gatewaycall, "
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
                    "failure_code, failure_message, succeeded_at, gateway_status_at, reconcile_attempts",
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
            ):
                data = buffer.getvalue()
                if data:
                    with raw.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write(data)
                buffer.seek(0)
                buffer.truncate()

        for i in range(1, n + 1):
            merchant_index = rng.choices(range(len(MERCHANT_WEIGHTS)), weights=MERCHANT_WEIGHTS)[0]
            merchant_id, mode, currency, gateway, account_id, invoice_id = _pick_combo(
                rng, by_merchant, merchant_index
            )
            paid_at = (YEAR_START + timedelta(seconds=rng.randrange(span))).isoformat()
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
                f"{status}\t{currency}\t{amount}\t{amount}\t{refunded}\t\t\tACSC\t\t\t\t{paid_at}\t{paid_at}\t0\n"
            )
            applications.write(
                f"{i}\t{payment_id}\t{invoice_id}\t{merchant_id}\t{mode}\t{gateway}\t{currency}\t{amount}\t"
                f"{applied}\t{overpaid}\t{tax}\t{fee}\t{taxable}\t1\t[]\t{paid_at}\t{paid_at}\n"
            )
            for rate, base, share in tax_rows:
                taxes.write(
                    f"{i}\t{merchant_id}\t{mode}\t{gateway}\t{currency}\t{paid_at}\t{rate}\t{base}\t{share}\n"
                )
            if i % 50_000 == 0:
                flush()
                print(f"  loaded {i:,} payments ({time.perf_counter() - t0:.0f} s)", flush=True)
        flush()
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('invoices_paymentapplication', 'id'), "
            "(SELECT max(id) FROM invoices_paymentapplication))"
        )
    print(f"loaded {n:,} payments in {time.perf_counter() - t0:.0f} s")


def vacuum() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    if db.get("PASSWORD"):
        dsn += f" password={db['PASSWORD']}"
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("payments_payment", "invoices_paymentapplication", "invoices_paymentapplicationtax"):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(f"VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s")


def time_report(label: str, runs: int, **scope) -> dict:
    from reporting.selectors import financial_report

    report = financial_report(**scope)  # warm-up
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        report = financial_report(**scope)
        timings.append(time.perf_counter() - t0)
    count = sum(c.figures.payments_count for c in report.currencies)
    return {
        "label": label,
        "payments": count,
        "median_ms": statistics.median(timings) * 1000,
        "max_ms": max(timings) * 1000,
        "runs": runs,
    }


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


def explain(merchant, start, end) -> str:
    from django.db import connection
    from django.db.models import Count, Sum

    from invoices.models import PaymentApplication

    qs = (
        PaymentApplication.objects.filter(merchant=merchant, mode="live", paid_at__gte=start, paid_at__lt=end)
        .order_by()
        .values("currency", "gateway")
        .annotate(n=Count("*"), gross=Sum("amount_minor"), tax=Sum("tax_minor"), fee=Sum("fee_minor"))
    )
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reload", action="store_true", help="reload the facts even if they are there")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="paytrust_bench_report")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.server, args.db)
    os.environ.setdefault("PAYTRUST_ALLOW_DEV_SECRET", "true")
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "rLNTU-eyDlvYDc4o1gMLqW9B6Wv4ST1ZnWrcs5oudIY=")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env=os.environ
    )

    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)
    from invoices.models import PaymentApplication
    from merchants.models import Merchant

    combos = setup_objects()
    if args.reload or PaymentApplication.objects.count() != args.payments:
        load(args.payments, combos)
        vacuum()
    else:
        print(f"reusing the {args.payments:,} payments already loaded (--reload to reload)")

    big = Merchant.objects.get(name="Bench merchant 1")
    month = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
    load_avg = os.getloadavg()
    results = [
        time_report("merchant-month", args.runs, merchant=big, mode="live", start=month[0], end=month[1]),
        time_report("merchant-year", args.runs, merchant=big, mode="live", start=YEAR_START, end=YEAR_END),
        time_report(
            "merchant-year-IDR",
            args.runs,
            merchant=big,
            mode="live",
            start=YEAR_START,
            end=YEAR_END,
            currency="IDR",
        ),
        time_report("all-year", args.runs, merchant=None, mode="live", start=YEAR_START, end=YEAR_END),
    ]
    load_after = os.getloadavg()
    print(
        f"\n{args.payments:,} payments loaded; load average before {load_avg[0]:.1f}, after {load_after[0]:.1f}"
    )
    print("| query | payments aggregated | median | max | runs |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['label']} | {r['payments']:,} | {r['median_ms']:.0f} ms | {r['max_ms']:.0f} ms | {r['runs']} |"
        )
    for label, scope in (
        ("merchant-month", {"merchant": big, "mode": "live", "start": month[0], "end": month[1]}),
        ("merchant-year", {"merchant": big, "mode": "live", "start": YEAR_START, "end": YEAR_END}),
        ("all-year", {"merchant": None, "mode": "live", "start": YEAR_START, "end": YEAR_END}),
    ):
        print(f"\nplans, {label}:")
        print("\n".join(scan_nodes(**scope)))
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the merchant-year collected aggregate:\n")
    print(explain(big, YEAR_START, YEAR_END))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
