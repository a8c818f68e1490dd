"""CPU per invoice creation in one process: N `POST /v1/invoices` (the body of bench/invoice_create.lua: 3 line
items, 2 tax rates, 3 installments, customer, metadata, unique external id and Idempotency-Key) through Django's
test client, i.e. the whole WSGI handler, middleware, DRF view, services and SQL round trips, without gunicorn
and without concurrency. Measures `time.process_time()` of this process (the database's CPU is not in it): far
steadier than a load test on a shared machine, so small changes show.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/paytrust_bench \\
        .venv/bin/python bench/invoice_cpu.py                       # 1,000 creations, this tree
    .venv/bin/python bench/invoice_cpu.py --compare-ref f676c30 --rounds 3   # REF vs this tree, alternating
    .venv/bin/python bench/invoice_cpu.py --profile out.pstats      # cProfile of the measured creations
    .venv/bin/python bench/invoice_cpu.py --baseline --rounds 3     # the bare baseline vs this tree, alternating

Each run creates a fresh database `<name>_cpu` (`<name>_cpuref` for REF) with bench/invoice_load.py's bench data.
Settings as in production: DEBUG off, LOG_LEVEL INFO (the JSON access line of every request is formatted and
written, to /dev/null), PROMETHEUS_MULTIPROC_DIR set to an empty directory (`--no-multiproc`: in-process metrics),
tracing on as by default (trace ids, nothing recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import invoice_load  # noqa: E402

WARMUP = 30
BODY = {
    "currency": "IDR",
    "gateway": "xendit",
    "description": "Order",
    "customer": {"name": "Budi Santoso", "email": "budi@example.com", "phone": "+628111111111"},
    "line_items": [
        {"name": "Widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"},
        {"name": "Gadget", "quantity": 1, "unit_price": "99999", "tax_rate": "0"},
        {"name": "Shipping", "quantity": 1, "unit_price": "25000", "tax_rate": "0.11"},
    ],
    "installments": {"count": 3},
    "metadata": {"source": "bench", "channel": "web"},
}


def child(args) -> None:
    """Measure in this process (started by `run`, with DATABASE_URL and the tree to import set)."""
    root = Path(args.root)
    sys.path.insert(0, str(root))
    os.chdir(root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")  # the baseline: its own (`run`)
    from paytrust.tracing import configure

    configure()
    import django

    django.setup()
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {args.key}")

    def create(i: int) -> None:
        unique = f"cpu-{i}-{time.time_ns()}"
        response = client.post(
            "/v1/invoices",
            json.dumps({**BODY, "external_id": unique}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=unique,
        )
        if response.status_code != 201:
            raise SystemExit(f"{response.status_code}: {response.content[:500]!r}")

    for i in range(WARMUP):  # key verification (Argon2id), prepared statements, caches
        create(i)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.process_time)  # CPU time: the waits on PostgreSQL are not counted
        profile.enable()
    started = time.process_time()
    wall = time.perf_counter()
    for i in range(args.n):
        create(WARMUP + i)
    cpu = time.process_time() - started
    wall = time.perf_counter() - wall
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    n = max(1, args.n)  # n = 0: the callgrind reference run (start-up and warm-up only)
    print(json.dumps({"cpu_ms": cpu * 1000 / n, "wall_ms": wall * 1000 / n}))


def run(root: Path, label: str, args, *, baseline: bool = False) -> dict:
    base = os.environ["DATABASE_URL"]
    try:
        url, data = invoice_load.fresh_database(label, root)
    finally:
        os.environ["DATABASE_URL"] = base
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "LOG_LEVEL": "INFO"}
    if baseline:  # bench/invoice_baseline_urls.py, as invoice_load.py serves it
        env.update(
            DJANGO_SETTINGS_MODULE="invoice_baseline_settings",
            BENCH_MERCHANT_ID=data["merchant"],
            BENCH_ACCOUNT_ID=data["account"],
            PYTHONPATH=os.pathsep.join([str(BENCH), str(root)]),
        )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if not args.no_multiproc:
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prom-cpu-")
    command = [sys.executable, __file__, "--child", "--root", str(root), "--key", data["key"]]
    if args.profile:
        command += ["--profile", args.profile]
    if args.callgrind:
        # Instructions per creation: (run of N) - (run of 0), both under callgrind: start-up, imports and the
        # warm-up cancel out. Deterministic up to the database's answers and the hash seed.
        counts = []
        for n in (args.n, 0):
            out = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command, "--n", str(n)],
                env={**env, "PYTHONHASHSEED": "0"}, cwd=root, check=True, capture_output=True, text=True,
            ).stderr  # fmt: skip
            counts.append(int(re.search(r"Collected : (\d+)", out).group(1)))
        return {"instructions": (counts[0] - counts[1]) / args.n}
    out = subprocess.run(
        [*command, "--n", str(args.n)],
        env=env,
        cwd=root,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="measured creations (after 30 discarded)")
    parser.add_argument("--compare-ref", metavar="REF", help="also measure git REF (temporary worktree)")
    parser.add_argument(
        "--baseline", action="store_true", help="also measure the bare baseline endpoint (invoice_load.py's)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", help="write a cProfile of the measured creations to this file")
    parser.add_argument("--no-multiproc", action="store_true")
    parser.add_argument(
        "--callgrind", action="store_true", help="count instructions per creation with valgrind instead"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(invoice_load.ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = {"prod": invoice_load.ROOT}
    ref_tree = None
    if args.baseline and args.compare_ref:
        parser.error("--baseline or --compare-ref, not both")
    if args.baseline:
        trees = {"ref": invoice_load.ROOT, "prod": invoice_load.ROOT}
        print("ref = the bare baseline (bench/invoice_baseline_urls.py)")
    if args.compare_ref:
        ref_tree, commit = invoice_load.ref_worktree(args.compare_ref)
        trees = {"ref": ref_tree, "prod": invoice_load.ROOT}
        print(f"ref = {args.compare_ref} ({commit}) in {ref_tree}")
    results: dict[str, list[float]] = {label: [] for label in trees}
    try:
        for number in range(args.rounds):
            labels = list(trees) if number % 2 == 0 else list(trees)[::-1]
            for label in labels:
                baseline = args.baseline and label == "ref"
                result = run(trees[label], "cpu" + ("ref" if label == "ref" else ""), args, baseline=baseline)
                if args.callgrind:
                    results[label].append(result["instructions"] / 1e6)
                    print(
                        f"round {number + 1} {label:<5} {result['instructions'] / 1e6:.3f} M instructions per "
                        f"creation (callgrind), load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
                    continue
                results[label].append(result["cpu_ms"])
                print(
                    f"round {number + 1} {label:<5} {result['cpu_ms']:.3f} ms CPU per creation "
                    f"(wall {result['wall_ms']:.3f} ms), load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        if ref_tree is not None:
            invoice_load.remove_worktree(ref_tree)
    unit = "M instructions" if args.callgrind else "ms CPU"
    for label, values in results.items():
        print(
            f"{label}: median {statistics.median(values):.3f} {unit} per creation over {len(values)} run(s)"
        )
    if args.compare_ref or args.baseline:
        ratio = statistics.median(results["prod"]) / statistics.median(results["ref"])
        print(f"prod / ref {unit} per creation: {ratio:.3f}")


if __name__ == "__main__":
    main()
