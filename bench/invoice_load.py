"""Invoice-creation load test: 100 concurrent clients against gunicorn on this machine.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/paytrust_bench \
        .venv/bin/python bench/invoice_load.py --mode quick --target both

Targets: `prod` (the real `POST /v1/invoices`: API-key auth, rate limit, Idempotency-Key, validation, money maths,
gateway/fee lookups, outbound event row) and `baseline` (bench/invoice_baseline_urls.py: a bare Django + DRF view
inserting the same invoice, line-item and installment rows). Both run under the project's gunicorn config
(paytrust/gunicorn_conf.py, gthread), one after the other, with the same load generator:
wrk (`apt-get install -y wrk`, script bench/invoice_create.lua) if installed, else a Python keep-alive client.

Modes: quick = 20 s, full = 300 s (plus a 5 s warm-up that is not measured: it also pays each worker's one-off
Argon2id key verification). Reports requests/s, p50/p95/p99/max latency and errors; `--json` writes them to a file.
Each target runs on a new database `<DATABASE_URL's name>_<target>` (dropped and created by the script, then
migrated; `--same-db` uses DATABASE_URL's itself) holding a bench merchant (rate limit raised so the limiter runs
but never refuses), an API key and a `xendit` test account with a 2.9 % + 2000 IDR fee.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
DURATIONS = {"quick": 20, "full": 300}
WARMUP_SECONDS = 5


def setup_data() -> dict:
    """Migrate and create (once) the bench merchant, key and gateway account. Returns ids and the plaintext key."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()
    from apikeys.services import Actor, api_key_create
    from gateways.models import GatewayAccount, GatewayFee
    from gateways.services import merchant_onboard
    from merchants.models import Merchant

    merchant = Merchant.objects.filter(name="Invoice bench").first() or merchant_onboard(
        name="Invoice bench", rate_limit_per_minute=100_000_000
    )
    account = GatewayAccount.objects.filter(
        merchant=merchant, mode="test", gateway="xendit", enabled=True
    ).first()
    if account is None:
        account = GatewayAccount.objects.create(
            merchant=merchant, mode="test", gateway="xendit", currencies=["IDR"]
        )
    GatewayFee.objects.update_or_create(
        account=account, currency="IDR", defaults={"percent": "0.029", "fixed_minor": 2000}
    )
    _, plaintext = api_key_create(
        merchant=merchant, mode="test", actor=Actor.system(), name="bench", scopes=[]
    )
    from django.db import connections

    connections.close_all()
    return {"merchant": merchant.id, "account": account.id, "key": plaintext}


def fresh_database(target: str) -> tuple[str, dict]:
    """A new, empty database `<DATABASE_URL's name>_<target>` (dropped first if it exists), migrated and given the
    bench data (in a child process: this one's Django is bound to one database). Every target starts from the
    same state: the inserted rows grow the tables and their indexes past PostgreSQL's buffers within minutes, so
    a target run after another on the same database would pay for the other's rows."""
    import psycopg
    from psycopg import sql

    base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    name = f"{base.path.lstrip('/')}_{target}"
    maintenance = urllib.parse.urlunsplit(base._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urllib.parse.urlunsplit(base._replace(path=f"/{name}"))
    out = subprocess.run(
        [PYTHON, __file__, "--setup-only"],
        env={**os.environ, "DATABASE_URL": url},
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return url, json.loads(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(
        self, target: str, data: dict, workers: int, threads: int, worker_class: str, log_dir: Path
    ) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_THREADS": str(threads),
                "BENCH_MERCHANT_ID": data["merchant"],
                "BENCH_ACCOUNT_ID": data["account"],
                "PAYTRUST_ALLOW_DEV_SECRET": env.get("PAYTRUST_ALLOW_DEV_SECRET", "true"),
            }
        )
        if worker_class != "gthread":  # GUNICORN_CMD_ARGS overrides paytrust/gunicorn_conf.py
            env["GUNICORN_CMD_ARGS"] = f"--worker-class {worker_class}"
        if target == "baseline":
            env["DJANGO_SETTINGS_MODULE"] = "invoice_baseline_settings"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), str(ROOT), env.get("PYTHONPATH")]))
        else:
            env["DJANGO_SETTINGS_MODULE"] = "paytrust.settings"
        self.log_path = log_dir / f"gunicorn-{target}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "paytrust.wsgi:application", "-c", "python:paytrust.gunicorn_conf"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn not ready after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def run_wrk(url: str, key: str, seconds: int, connections: int) -> dict:
    env = dict(os.environ, BENCH_API_KEY=key)
    command = [
        "wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(BENCH / "invoice_create.lua"), url,
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.stderr.strip():
        print(result.stderr.strip()[:2000], file=sys.stderr)
    for line in result.stdout.splitlines():
        if line.startswith("JSON "):
            data = json.loads(line[5:])
            data["errors"] = (
                sum(data[k] for k in data if k.startswith("errors_"))
                + data["non_201"]
                - data["errors_status"]
            )
            data["generator"] = f"wrk -t2 -c{connections} (closed loop, keep-alive)"
            return data
    raise RuntimeError(f"wrk produced no summary:\n{result.stdout}\n{result.stderr}")


def run_python(url: str, key: str, seconds: int, connections: int) -> dict:
    """Fallback generator: `connections` threads, each a keep-alive requests.Session, closed loop."""
    import requests

    body = {
        "currency": "IDR",
        "gateway": "xendit",
        "customer": {"name": "Budi Santoso", "email": "budi@example.com", "phone": "+628111111111"},
        "line_items": [
            {"name": "Widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"},
            {"name": "Gadget", "quantity": 1, "unit_price": "99999", "tax_rate": "0"},
            {"name": "Shipping", "quantity": 1, "unit_price": "25000", "tax_rate": "0.11"},
        ],
        "installments": {"count": 3},
        "metadata": {"source": "bench", "channel": "web"},
    }
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {key}"})
        n = 0
        while time.monotonic() < stop:
            n += 1
            ext = f"py{index}-{n}-{time.time_ns()}"
            started = time.perf_counter()
            try:
                response = session.post(
                    f"{url}/v1/invoices",
                    json={**body, "external_id": ext},
                    headers={"Idempotency-Key": f"bench-{ext}"},
                    timeout=10,
                )
                ok = response.status_code == 201
            except requests.RequestException:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "seconds": round(took, 2),
        "rps": len(latencies) / took,
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
        "max_ms": max(latencies),
        "mean_ms": statistics.fmean(latencies),
        "errors": errors[0],
        "generator": f"python threads ×{connections} (requests keep-alive, closed loop)",
    }


def measure(target: str, data: dict, args, log_dir: Path) -> dict:
    server = Server(target, data, args.workers, args.threads, args.worker_class, log_dir)
    try:
        server.wait_ready()
        run = run_wrk if shutil.which("wrk") and not args.python else run_python
        run(server.url, data["key"], WARMUP_SECONDS, min(args.connections, 20))  # warm-up, discarded
        result = run(server.url, data["key"], DURATIONS[args.mode], args.connections)
    finally:
        server.stop()
    result.update(
        {
            "target": target,
            "mode": args.mode,
            "workers": args.workers,
            "threads": args.threads,
            "worker_class": args.worker_class,
            "load_average": os.getloadavg(),
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=sorted(DURATIONS), default="quick")
    parser.add_argument("--target", choices=["prod", "baseline", "both"], default="both")
    parser.add_argument("--connections", type=int, default=100)
    # Defaults = paytrust/gunicorn_conf.py's (2 workers x 4 threads: one worker per core on the 2-core VM).
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "4")))
    parser.add_argument(
        "--python", action="store_true", help="use the Python load generator even if wrk exists"
    )
    parser.add_argument(
        "--worker-class",
        choices=["gthread", "sync"],
        default="gthread",
        help="gthread = the production config (keep-alive); sync = one request per worker, fair accept queue",
    )
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--same-db",
        action="store_true",
        help="run every target on DATABASE_URL itself (default: each on a new database, see fresh_database)",
    )
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.setup_only:  # child of fresh_database(): migrate, create the bench data, print it
        print(json.dumps(setup_data()))
        return
    log_dir = Path(tempfile.mkdtemp(prefix="invoice-bench-"))
    targets = ["baseline", "prod"] if args.target == "both" else [args.target]
    results = []
    for target in targets:
        if args.same_db:
            data = setup_data()
        else:
            os.environ["DATABASE_URL"], data = fresh_database(target)
        results.append(measure(target, data, args, log_dir))

    print(f"\ninvoice creation, {args.connections} concurrent clients, {DURATIONS[args.mode]} s ({args.mode}), "
          f"gunicorn {args.worker_class} {args.workers} workers × {args.threads} threads, {os.cpu_count()} CPUs; "
          f"logs in {log_dir}")  # fmt: skip
    print(
        f"{'target':<9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}  requests"
    )
    for r in results:
        print(
            f"{r['target']:<9} {r['rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['max_ms']:>8.1f} {r['errors']:>7} {r['requests']:>9}  {r['load_average'][0]:.1f}"
        )
    print(f"generator: {results[0]['generator']}")
    for r in results:
        if r["target"] == "prod":
            verdict = r["p95_ms"] < 2000 and r["p99_ms"] < 800 and r["errors"] == 0
            print(f"targets (p95 < 2 s, p99 < 800 ms, no errors): {'MET' if verdict else 'NOT MET'}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
