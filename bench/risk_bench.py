"""Risk check benchmark: `risk.services.risk_evaluate` in process, against a real PostgreSQL database with realistic
rules and history (docs/adr/0053; the SPEC target: < 2 ms p99 in process).

    PAYTRUST_ALLOW_DEV_SECRET=true FIELD_ENCRYPTION_KEYS=<fernet key> \
    .venv/bin/python bench/risk_bench.py [--evaluations 10000] [--history 200000] [--invoices 2000] \
        [--server postgresql://postgres@127.0.0.1:5432] [--db paytrust_bench_risk] [--redis redis://127.0.0.1:6379/0]

What it does: creates the scratch database (`--db`) on `--server` if missing and migrates it (DATABASE_URL is set
to it for this process only); a merchant through the real service, with rules set through
`risk_settings_update`: 500 blocked e-mails, 100 domains, 200 IPs and 50 CIDR blocks, 200 device ids, amount and
new-customer thresholds in three currencies, velocity limits per e-mail / IP / device. History (not timed):
`--invoices` invoices through `invoice_create` for 2,000 customer e-mails, and `--history` velocity rows spread
over the last 24 hours across 20,000 e-mails, 20,000 IPs and 20,000 devices (COPY), then VACUUM ANALYZE.

Then `--evaluations` calls of `risk_evaluate` (a mix of attempts: 80 % ordinary customers from the history, 10 %
on a block list, 10 % above an amount threshold), alternating two arms: inside an open transaction, as
initiation's phase 1 calls it (the COMMIT belongs to the payment's insert and is not timed), and on its own (its
COMMIT timed); a bare `SELECT 1` round trip is timed after each call as the machine's floor. Each is timed with
perf_counter; p50 / p95 / p99 / max are printed per arm with the decisions and the load average. With `--redis`, the same again with REDIS_URL set (the
velocity log in Redis; the settings version and new-customer read still one PostgreSQL query).
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
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")


def ensure_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    return f"{server}/{name}"


def setup(args, rng: random.Random):
    from apikeys.services import Actor
    from gateways.services import merchant_onboard
    from invoices.calc import CustomerIn, LineItemIn
    from invoices.services import invoice_create
    from risk.services import risk_settings_update

    merchant = merchant_onboard(name=f"Risk bench {datetime.now(UTC):%H%M%S}")
    risk_settings_update(
        merchant=merchant,
        mode="test",
        actor=Actor.system(),
        changes={
            "velocity_email_hour": 30,
            "velocity_email_day": 300,
            "velocity_ip_hour": 100,
            "velocity_ip_day": 1000,
            "velocity_device_hour": 30,
            "velocity_device_day": 300,
            "amount_thresholds": {"IDR": "75000000", "USD": "5000.00", "MYR": "20000.00"},
            "new_customer_thresholds": {"IDR": "15000000", "USD": "1000.00", "MYR": "4000.00"},
            "blocked_emails": [f"fraud{i}@example.net" for i in range(500)],
            "blocked_email_domains": [f"spam{i}.example" for i in range(100)],
            "blocked_ips": [f"192.0.2.{i}" for i in range(200)] + [f"10.{i}.0.0/16" for i in range(50)],
            "blocked_device_ids": [f"bad-device-{i}" for i in range(200)],
        },
    )
    t0 = time.perf_counter()
    for i in range(args.invoices):
        invoice_create(
            merchant=merchant,
            mode="test",
            currency="IDR",
            gateway=None,
            line_items=[LineItemIn("Widget", 1, "150000", "0")],
            customer=CustomerIn("Customer", f"customer{i % 2000}@example.com", ""),
        )
    print(f"{args.invoices} invoices in {time.perf_counter() - t0:.1f} s")
    load_history(merchant.pk, args.history, rng)
    return merchant


def load_history(merchant_id: str, rows: int, rng: random.Random) -> None:
    from django.db import connection

    now = datetime.now(UTC)
    buffer = io.StringIO()
    for _ in range(rows):
        kind = rng.choice(("email", "ip", "device"))
        n = rng.randrange(20000)
        value = {
            "email": f"customer{n}@example.com",
            "ip": f"198.51.{n // 256 % 256}.{n % 256}",
            "device": f"d{n}",
        }
        at = now - timedelta(seconds=rng.uniform(0, 86000))
        buffer.write(f"{merchant_id}\ttest\t{kind}:{value[kind]}\t{at.isoformat()}\n")
    buffer.seek(0)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.copy("COPY risk_velocityhit (merchant_id, mode, key, created_at) FROM STDIN") as copy:
            copy.write(buffer.read())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE risk_velocityhit")
        cursor.execute("ANALYZE invoices_invoice")
    print(f"{rows} velocity rows loaded in {time.perf_counter() - t0:.1f} s")


def attempt(rng: random.Random) -> dict:
    n = rng.randrange(20000)
    kwargs = {
        "currency": "IDR",
        "amount_minor": rng.choice((150_000, 500_000, 2_000_000)),
        "email": f"customer{n}@example.com",
        "customer_ip": f"198.51.{n // 256 % 256}.{n % 256}",
        "device_id": f"d{n}",
    }
    roll = rng.random()
    if roll < 0.10:
        which = rng.randrange(4)
        if which == 0:
            kwargs["email"] = f"fraud{rng.randrange(500)}@example.net"
        elif which == 1:
            kwargs["email"] = f"x{n}@spam{rng.randrange(100)}.example"
        elif which == 2:
            kwargs["customer_ip"] = f"10.{rng.randrange(50)}.{rng.randrange(256)}.{rng.randrange(256)}"
        else:
            kwargs["device_id"] = f"bad-device-{rng.randrange(200)}"
    elif roll < 0.20:
        kwargs["amount_minor"] = 80_000_000
    return kwargs


def _summary(label: str, timings: list[float]) -> str:
    ms = sorted(t * 1000 for t in timings)
    q = statistics.quantiles(ms, n=100)
    return (
        f"{label}: n={len(ms)} p50 {q[49]:.3f} ms, p95 {q[94]:.3f} ms, p99 {q[98]:.3f} ms, max {ms[-1]:.3f} ms, "
        f"mean {statistics.fmean(ms):.3f} ms"
    )


def measure(merchant, count: int, rng: random.Random, label: str) -> None:
    """Three timings per round, alternated: `in_txn` = risk_evaluate inside an open transaction, as initiation's
    phase 1 calls it (the COMMIT, shared with the payment's insert, not timed); `own_txn` = risk_evaluate on its
    own (its COMMIT timed); `select1` = a bare `SELECT 1` round trip on the same connection (the machine's floor)."""
    from django.db import connection, transaction

    from risk.services import risk_evaluate

    for _ in range(200):  # warm up: connection, plans, the rules cache
        risk_evaluate(merchant_id=merchant.pk, mode="test", **attempt(rng))
    arms: dict[str, list[float]] = {"in_txn": [], "own_txn": [], "select1": []}
    decisions = Counter()
    for i in range(count):
        kwargs = attempt(rng)
        if i % 2 == 0:
            with transaction.atomic():
                t0 = time.perf_counter()
                assessment = risk_evaluate(merchant_id=merchant.pk, mode="test", **kwargs)
                arms["in_txn"].append(time.perf_counter() - t0)
        else:
            t0 = time.perf_counter()
            assessment = risk_evaluate(merchant_id=merchant.pk, mode="test", **kwargs)
            arms["own_txn"].append(time.perf_counter() - t0)
        decisions[assessment.decision] += 1
        if any(r.code == "risk_engine_error" for r in assessment.reasons):
            raise SystemExit("the engine failed during the benchmark; see the log")
        with connection.cursor() as cursor:
            t0 = time.perf_counter()
            cursor.execute("SELECT 1")
            arms["select1"].append(time.perf_counter() - t0)
    for arm, timings in arms.items():
        print(_summary(f"{label} {arm}", timings))
    print(f"{label} decisions: {dict(decisions)}")
    print(f"load average: {os.getloadavg()}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--evaluations", type=int, default=10000)
    parser.add_argument("--history", type=int, default=200000)
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="paytrust_bench_risk")
    parser.add_argument("--redis", default="")
    parser.add_argument("--seed", type=int, default=53)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.server, args.db)
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ["REDIS_URL"] = ""
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env=os.environ
    )

    import django

    django.setup()
    from django.conf import settings

    rng = random.Random(args.seed)
    merchant = setup(args, rng)
    measure(merchant, args.evaluations, rng, "postgresql")
    if args.redis:
        settings.REDIS_URL = args.redis
        measure(merchant, args.evaluations, rng, "redis")
    return 0


if __name__ == "__main__":
    sys.exit(main())
