"""Invoice creation through the scaled-out cluster (deploy/cluster.py: nginx -> app instances -> PgBouncer ->
primary, with its streaming replica), against 1 and 3 instances at 100 and 300 connections, and pgbench inserting
the same rows into the same primary in the same run: the database's ceiling.

    .venv/bin/python bench/cluster_load.py                      # 2 minutes per point (about 10 minutes in all)
    .venv/bin/python bench/cluster_load.py --seconds 20 --pgbench-seconds 20 --json /tmp/cluster.json

It starts its own cluster in a temporary CLUSTER_DIR (ports from the CLUSTER_* variables, default 3000...) and
stops it at the end. "1 instance" is the same cluster with the other two drained in nginx (idle, no traffic).
Each instance is CLUSTER_WEB_CONCURRENCY gunicorn processes (default 1) x GUNICORN_THREADS (default 4).
Load: wrk with bench/invoice_create.lua (3 line items, 3 installments, unique external_id and Idempotency-Key).
Per point it prints requests/s, latency percentiles, errors, and the WAL the primary wrote per invoice created.

pgbench (-c 16 -j 2, prepared statements, directly on the primary): one transaction = one invoice, its 3 line
items, its 3 installments and its `invoice.created` event row, copied from an invoice the API created (same
widths, same indexes), with time-ordered ids like the app's. It is what the database can do for the rows alone,
with no API, no authentication, rate limiting or idempotency round trips.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "bench"))

PYTHON = str(ROOT / ".venv" / "bin" / "python")
CLUSTER = [PYTHON, str(ROOT / "deploy" / "cluster.py")]


def pgbench_script(template_invoice: str) -> str:
    """(Run inside the cluster's environment: Django is set up.) The pgbench transaction copying `template_invoice`,
    its line items, installments and its invoice.created event, with new time-ordered ids."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")
    sys.path.insert(0, str(ROOT))
    django.setup()
    from invoices.models import Installment, Invoice, LineItem
    from webhooks.outbound.models import Event

    def copy(model, where: str, overrides: dict[str, str]) -> str:
        fields = [
            f
            for f in model._meta.concrete_fields
            if not (f.primary_key and f.get_internal_type() == "BigAutoField")
        ]
        columns = [f.column for f in fields]
        values = [overrides.get(column, f'"{column}"') for column in columns]
        table = model._meta.db_table
        quoted = ", ".join(f'"{column}"' for column in columns)
        return f'INSERT INTO "{table}" ({quoted}) SELECT {", ".join(values)} FROM "{table}" WHERE {where};'

    template = f"'{template_invoice}'"
    event = (
        Event.objects.filter(type="invoice.created", data__id=template_invoice)
        .values_list("id", flat=True)
        .first()
    )
    # New ids, time-ordered like the app's (ADR 0041: appended at the primary key's right edge), made once per
    # transaction and bound as parameters (-M prepared).
    stamp = "lpad(to_hex((extract(epoch from clock_timestamp()) * 1000000)::bigint), 14, '0') || :suffix"
    lines = [
        "\\set suffix random(100000000, 999999999)",
        f"SELECT 'inv_pgb' || {stamp} AS inv_id, 'evt_pgb' || {stamp} AS evt_id \\gset",
        "BEGIN;",
        copy(Invoice, f'"id" = {template}', {"id": ":inv_id"}),
        copy(LineItem, f'"invoice_id" = {template}', {"invoice_id": ":inv_id"}),
        copy(Installment, f'"invoice_id" = {template}', {"invoice_id": ":inv_id"}),
    ]
    if event:
        lines.append(copy(Event, f"\"id\" = '{event}'", {"id": ":evt_id"}))
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def api(base: str, path: str, key: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own loopback URL
        return json.loads(response.read())


def wal_and_invoices(primary: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(primary, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM invoices_invoice").fetchone()[0]
    return int(lsn), int(count)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds it used, with those of its reaped children)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        table[int(entry.name)] = (int(fields[1]), ticks / CLOCK_TICKS)
    return table


def cpu_by_tier(cfg) -> dict[str, float]:
    """CPU seconds used so far by each tier's process tree (root pids from the cluster's pid files)."""
    roots = {"nginx": [cfg.run / "nginx.pid"], "pgbouncer": [cfg.run / "pgbouncer.pid"]}
    roots["app"] = [cfg.run / f"app-{port}.pid" for port in cfg.app_ports]
    roots["primary"] = [cfg.directory / "primary" / "postmaster.pid"]
    roots["replica"] = [cfg.directory / "replica" / "postmaster.pid"]
    roots["workers"] = [cfg.run / f"worker-{n}.pid" for n in range(1, cfg.workers + 1)]
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    totals = {}
    for tier, files in roots.items():
        total, stack = 0.0, []
        for path in files:
            try:
                stack.append(int(path.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        while stack:
            pid = stack.pop()
            total += table.get(pid, (0, 0.0))[1]
            stack.extend(children.get(pid, []))
        totals[tier] = total
    return totals


def cpu_ms_per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    return (
        {tier: round((after[tier] - before[tier]) * 1000 / requests, 2) for tier in after} if requests else {}
    )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--connections", default="100,300")
    parser.add_argument("--instances", default="1,3")
    parser.add_argument("--pgbench-seconds", type=int, default=120)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pgbench-script", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pgbench_script:
        print(pgbench_script(args.pgbench_script))
        return
    import cluster as cluster_script
    from invoice_load import run_wrk

    directory = Path(tempfile.mkdtemp(prefix="paytrust-bench-cluster-"))
    directory.chmod(0o755)
    env = {**os.environ, "CLUSTER_DIR": str(directory), "CLUSTER_SEED": "0", "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    os.environ.update({k: v for k, v in env.items() if k.startswith("CLUSTER_")})
    cfg = cluster_script.Config()
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "points": []}
    try:
        subprocess.run([*CLUSTER, "up"], env=env, check=True, capture_output=True)
        setup = subprocess.run(
            [*CLUSTER, "run", PYTHON, str(ROOT / "bench" / "invoice_load.py"), "--setup-only"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        key = json.loads(setup.stdout.strip().splitlines()[-1])["key"]
        base = cfg.base_url()
        template = api(base, "/v1/invoices", key, {
            "currency": "IDR", "gateway": "xendit", "description": "pgbench template",
            "customer": {"name": "Budi Santoso", "email": "budi@example.com", "phone": "+628111111111"},
            "line_items": [
                {"name": "Widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"},
                {"name": "Gadget", "quantity": 1, "unit_price": "99999", "tax_rate": "0"},
                {"name": "Shipping", "quantity": 1, "unit_price": "25000", "tax_rate": "0.11"},
            ],
            "installments": {"count": 3}, "metadata": {"source": "bench", "channel": "web"},
        })  # fmt: skip
        time.sleep(1)
        script = subprocess.run(
            [*CLUSTER, "run", PYTHON, __file__, "--pgbench-script", template["id"]],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        script_path = directory / "invoice.pgbench"
        script_path.write_text(script)
        primary = cfg.primary_url()
        for instances in [int(n) for n in args.instances.split(",")]:
            drained = cfg.app_ports[instances:]
            cluster_script._update_state(cfg, lambda state, drained=drained: state.update(drained=drained))
            cluster_script.nginx_apply(cfg)
            time.sleep(2)
            for connections in [int(n) for n in args.connections.split(",")]:
                wal_before, invoices_before = wal_and_invoices(primary)
                cpu_before = cpu_by_tier(cfg)
                started = time.monotonic()
                data = run_wrk(f"{base}/v1/invoices", key, args.seconds, connections)
                elapsed = time.monotonic() - started
                cpu_after = cpu_by_tier(cfg)
                wal_after, invoices_after = wal_and_invoices(primary)
                created = invoices_after - invoices_before
                point = {
                    "target": f"{instances} instance{'s' if instances > 1 else ''}",
                    "connections": connections,
                    "rps": data["rps"],
                    "p50_ms": data["p50_ms"],
                    "p99_ms": data["p99_ms"],
                    "errors": data["errors"],
                    "created_per_s": round(created / elapsed, 1),
                    "wal_bytes_per_invoice": round((wal_after - wal_before) / created) if created else None,
                    # CPU per created invoice, by tier (the warm-up-free wrk window; includes the health loop's polls)
                    "cpu_ms_per_invoice": cpu_ms_per_request(cpu_before, cpu_after, created),
                    "load_average": load_average(),
                }
                results["points"].append(point)
                print(json.dumps(point), flush=True)
        wal_before, invoices_before = wal_and_invoices(primary)
        cpu_before = cpu_by_tier(cfg)
        bench = subprocess.run(
            ["pgbench", "-n", "-c", "16", "-j", "2", "-M", "prepared", "-T", str(args.pgbench_seconds),
             "-f", str(script_path), primary],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        time.sleep(
            2
        )  # pgbench's backends have exited: let the postmaster reap them (their CPU joins its cutime)
        cpu_after = cpu_by_tier(cfg)
        wal_after, invoices_after = wal_and_invoices(primary)
        tps = next(line for line in bench.stdout.splitlines() if line.startswith("tps"))
        latency = next((line for line in bench.stdout.splitlines() if "latency average" in line), "")
        created = invoices_after - invoices_before
        point = {
            "target": "pgbench (same rows, primary directly, -c 16 -j 2)",
            "tps": float(tps.split("=")[1].split()[0]),
            "latency": latency.strip(),
            "wal_bytes_per_invoice": round((wal_after - wal_before) / created) if created else None,
            "cpu_ms_per_invoice": cpu_ms_per_request(cpu_before, cpu_after, created),
            "load_average": load_average(),
        }
        results["points"].append(point)
        print(json.dumps(point), flush=True)
    finally:
        subprocess.run([*CLUSTER, "down"], env=env, check=False, capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
