"""Invoice-creation load test: 100 concurrent clients against gunicorn on this machine.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/paytrust_bench \
        .venv/bin/python bench/invoice_load.py --mode quick --target both

Targets: `prod` (the real `POST /v1/invoices`: API-key auth, rate limit, Idempotency-Key, validation, money maths,
gateway/fee lookups, outbound event row) and `baseline` (bench/invoice_baseline_urls.py: a bare Django + DRF view
inserting the same invoice, line-item and installment rows). Both run under the project's gunicorn config
(paytrust/gunicorn_conf.py, gthread), one after the other, with the same load generator:
wrk (`apt-get install -y wrk`, script bench/invoice_create.lua) if installed, else a Python keep-alive client.

`--compare-ref REF` (e.g. `--compare-ref main`, `--compare-ref f676c30`): instead of the baseline, runs git REF's
PayTrust (checked out with `git worktree add --detach` into a temporary directory, using this tree's .venv, removed
at the end) side by side with the working tree's, each on its own fresh database (`<name>_ref`, `<name>_prod`),
alternating the order every round (`--rounds N`), and prints prod/ref per round and their median: the ratio any
change is worth, measured in one run on the same machine state.

Every run also reports the CPU milliseconds gunicorn's processes (master and workers, from /proc) spent per
request: on a shared, noisy machine the steadier of the measures. The server runs as in production: DEBUG off
(whatever the caller's environment says) and PROMETHEUS_MULTIPROC_DIR set to an empty directory per server
(`--no-multiproc` leaves the metrics in-process).

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


def setup_data(root: Path = ROOT) -> dict:
    """Migrate and create (once) the bench merchant, key and gateway account. Returns ids and the plaintext key.
    `root`: the source tree whose migrations and services to use (a `--compare-ref` worktree for its database)."""
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root, check=True)
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


def fresh_database(target: str, root: Path = ROOT) -> tuple[str, dict]:
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
        [PYTHON, __file__, "--setup-only", "--root", str(root)],
        env={**os.environ, "DATABASE_URL": url},
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return url, json.loads(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ref_worktree(ref: str) -> tuple[Path, str]:
    """Check git REF out into a new temporary directory (detached worktree) that uses this tree's .venv.
    Returns the tree and the commit's short hash; remove it with `remove_worktree`."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix="invoice-ref-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), commit], cwd=ROOT, check=True)
    venv = ROOT / ".venv"
    if venv.exists():
        (tree / ".venv").symlink_to(venv.resolve())
    return tree, commit


def remove_worktree(tree: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    shutil.rmtree(tree.parent, ignore_errors=True)


def _proc_stats():
    """(command name, stat fields after the name) of every live process, from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        yield stat.split("(", 1)[1].rsplit(")", 1)[0], stat.rsplit(")", 1)[1].split()


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group (gunicorn's master and workers), from
    /proc: the work the server did, whatever else the machine was doing meanwhile."""
    ticks = os.sysconf("SC_CLK_TCK")
    # fields after the command: state, ppid, pgrp, ...; utime and stime are the 12th and 13th
    return sum((int(f[11]) + int(f[12])) / ticks for _, f in _proc_stats() if int(f[2]) == pgid)


def postgres_cpu_seconds() -> float:
    """User + system CPU seconds of the machine's PostgreSQL processes (backends, WAL writer, checkpointer...),
    with the postmaster's reaped children (a backend that exited) through its cutime/cstime: the database's
    share of a request, which gunicorn's CPU does not show. The whole cluster: read it on a quiet machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(
        sum(int(value) for value in f[11:15]) / ticks  # utime, stime, cutime, cstime
        for name, f in _proc_stats()
        if name in ("postgres", "postmaster")
    )


class Server:
    def __init__(
        self,
        target: str,
        data: dict,
        workers: int,
        threads: int,
        worker_class: str,
        log_dir: Path,
        *,
        root: Path = ROOT,
        multiproc: bool = True,
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
                "DEBUG": "false",  # as in production (DEBUG keeps every SQL statement in connection.queries)
            }
        )
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if multiproc:  # as scripts/run.sh and the Dockerfile run it: an empty directory per server
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"prom-{target}-", dir=log_dir)
        if worker_class != "gthread":  # GUNICORN_CMD_ARGS overrides paytrust/gunicorn_conf.py
            env["GUNICORN_CMD_ARGS"] = f"--worker-class {worker_class}"
        if target == "baseline":
            env["DJANGO_SETTINGS_MODULE"] = "invoice_baseline_settings"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), str(ROOT), env.get("PYTHONPATH")]))
        else:
            env["DJANGO_SETTINGS_MODULE"] = "paytrust.settings"
            env.pop(
                "PYTHONPATH", None
            )  # `python -m` puts cwd (root) first: the code of that tree, nothing else
        self.log_path = log_dir / f"gunicorn-{target}-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "paytrust.wsgi:application", "-c", "python:paytrust.gunicorn_conf"],
            cwd=root,
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


def py_spy(server: Server, target: str, seconds: int, args) -> subprocess.Popen:
    """Sample gunicorn's master and workers (`--subprocesses`) for the measured run with py-spy (`pip install
    -e .[dev]`; needs ptrace: root, or kernel.yama.ptrace_scope=0), Python frames only (no `--native`), only the
    thread holding the GIL (`--gil`: a worker's Python CPU time; py-spy's idle detection counts threads blocked in
    psycopg's and the thread pool's waits as busy): collapsed stacks (`--format raw`) for bench/profile_shares.py."""
    out = Path(args.py_spy) / f"{target}-{args.worker_class}-{server.port}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    py_spy_bin = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    command = [
        py_spy_bin, "record", "--pid", str(server.proc.pid), "--subprocesses", "--rate", "100", "--gil", "--full-filenames",
        "--duration", str(seconds), "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    print(f"py-spy: {' '.join(command)}", flush=True)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(target: str, data: dict, args, log_dir: Path, root: Path = ROOT) -> dict:
    server = Server(
        target, data, args.workers, args.threads, args.worker_class, log_dir, root=root,
        multiproc=not args.no_multiproc,
    )  # fmt: skip
    try:
        server.wait_ready()
        run = run_wrk if shutil.which("wrk") and not args.python else run_python
        run(server.url, data["key"], WARMUP_SECONDS, min(args.connections, 20))  # warm-up, discarded
        seconds = args.seconds or DURATIONS[args.mode]
        spy = py_spy(server, target, seconds, args) if args.py_spy else None
        cpu_before, pg_before = group_cpu_seconds(server.proc.pid), postgres_cpu_seconds()
        result = run(server.url, data["key"], seconds, args.connections)
        cpu = group_cpu_seconds(server.proc.pid) - cpu_before
        pg_cpu = postgres_cpu_seconds() - pg_before
        if spy is not None:
            spy.wait(timeout=120)
        result["cpu_ms_per_request"] = cpu * 1000 / max(1, result["requests"])
        result["pg_cpu_ms_per_request"] = pg_cpu * 1000 / max(1, result["requests"])
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
    parser.add_argument("--seconds", type=int, help="measured seconds per run (overrides --mode's duration)")
    parser.add_argument("--target", choices=["prod", "baseline", "both"], default="both")
    parser.add_argument(
        "--compare-ref",
        metavar="REF",
        help="run git REF's PayTrust (temporary worktree) against the working tree's, instead of the baseline",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the targets, alternating their order (default 1)"
    )
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
    parser.add_argument(
        "--no-multiproc", action="store_true", help="no PROMETHEUS_MULTIPROC_DIR (metrics stay in-process)"
    )
    parser.add_argument(
        "--py-spy", metavar="DIR", help="profile each measured run with py-spy: collapsed stacks into DIR"
    )
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--same-db",
        action="store_true",
        help="run every target on DATABASE_URL itself (default: each on a new database, see fresh_database)",
    )
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.compare_ref and args.same_db:
        parser.error(
            "--compare-ref needs a database per side (each with its own tree's migrations): no --same-db"
        )
    if args.setup_only:  # child of fresh_database(): migrate, create the bench data, print it
        print(json.dumps(setup_data(args.root)))
        return
    log_dir = Path(tempfile.mkdtemp(prefix="invoice-bench-"))
    roots = {"prod": ROOT, "baseline": ROOT}
    ref_tree = ref_commit = None
    if args.compare_ref:
        ref_tree, ref_commit = ref_worktree(args.compare_ref)
        roots["ref"] = ref_tree
        targets = ["ref", "prod"]
    else:
        targets = ["baseline", "prod"] if args.target == "both" else [args.target]
    base_url = os.environ["DATABASE_URL"]
    results = []
    try:
        for round_number in range(args.rounds):
            order = targets if round_number % 2 == 0 else targets[::-1]
            for target in order:
                if args.same_db:
                    data = setup_data()
                else:  # a fresh database per target and round: every run starts from empty tables
                    os.environ["DATABASE_URL"] = base_url
                    os.environ["DATABASE_URL"], data = fresh_database(target, roots[target])
                result = measure(target, data, args, log_dir, roots[target])
                result["round"] = round_number + 1
                results.append(result)
                print(
                    f"round {round_number + 1} {target:<8} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.1f}"
                    f"  p99 {result['p99_ms']:7.1f} ms  cpu {result['cpu_ms_per_request']:5.2f} ms/req"
                    f" (postgres {result['pg_cpu_ms_per_request']:5.2f})"
                    f"  errors {result['errors']}  load {result['load_average'][0]:.1f}",
                    flush=True,
                )
    finally:
        os.environ["DATABASE_URL"] = base_url
        if ref_tree is not None:
            remove_worktree(ref_tree)

    head = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    seconds = args.seconds or DURATIONS[args.mode]
    print(f"\ninvoice creation, {args.connections} concurrent clients, {seconds} s per run, {args.rounds} round(s), "
          f"gunicorn {args.worker_class} {args.workers} workers × {args.threads} threads, {os.cpu_count()} CPUs; "
          f"prod = working tree {head}" + (f", ref = {args.compare_ref} ({ref_commit})" if ref_commit else "")
          + f"; logs in {log_dir}")  # fmt: skip
    print(
        f"{'round':>5} {'target':<9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'errors':>7} {'requests':>9} {'CPU ms/req':>10} {'PG ms/req':>9}  load"
    )
    for r in results:
        print(
            f"{r['round']:>5} {r['target']:<9} {r['rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['errors']:>7} {r['requests']:>9} "
            f"{r['cpu_ms_per_request']:>10.2f} {r.get('pg_cpu_ms_per_request', 0):>9.2f}  {r['load_average'][0]:.1f}"
        )
    print(f"generator: {results[0]['generator']}")
    other = "ref" if args.compare_ref else "baseline"
    ratios = []
    for number in range(1, args.rounds + 1):
        mine = {r["target"]: r for r in results if r["round"] == number}
        if "prod" in mine and other in mine:
            ratios.append(
                (mine["prod"]["rps"] / mine[other]["rps"],
                 mine["prod"]["cpu_ms_per_request"] / mine[other]["cpu_ms_per_request"])
            )  # fmt: skip
    for number, (rps, cpu) in enumerate(ratios, 1):
        print(f"round {number}: prod / {other} req/s {rps:.2f}, CPU per request {cpu:.2f}")
    if ratios:
        print(
            f"median prod / {other}: req/s {statistics.median(r for r, _ in ratios):.2f}, "
            f"CPU per request {statistics.median(c for _, c in ratios):.2f}"
        )
    for r in results:
        if r["target"] == "prod":
            verdict = r["p95_ms"] < 2000 and r["p99_ms"] < 800 and r["errors"] == 0
            print(f"round {r['round']} prod targets (p95 < 2 s, p99 < 800 ms, no errors): "
                  f"{'MET' if verdict else 'NOT MET'}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
