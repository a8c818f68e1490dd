"""Authentication cost: throughput of unauthenticated vs authenticated requests against gunicorn on this
machine, side by side in the same run, plus in-process timings of the verify paths.

    .venv/bin/python bench/auth_bench.py [--duration 10] [--connections 16] [--workers 2] [--tool auto]

Scenarios (same gunicorn settings, same load generator, one after the other):
  healthz            GET /healthz                 no auth, no DRF, no database
  api-no-key         GET /v1/merchant, no key     DRF view refused with 401 before any auth work
  api-auth           GET /v1/merchant, valid key  auth (key row read + cached digest check), rate limit off
  api-auth-rl-pg     same, rate limiting on, PostgreSQL store
  api-auth-rl-redis  same, rate limiting on, Redis store (skipped when no Redis answers on REDIS_URL)
In-process: one Argon2id verification vs the cached path (digest compare only, and the full authenticate_key
with its database read), and one rate-limit hit per store.

The load generator is wrk when present (installed with apt-get when missing and running as root), else a
Python keep-alive client (threads). Results are printed as a Markdown table and written to bench/results/.
Database: $DATABASE_URL, else scripts/devdb.py finds one (database `paytrust_bench_auth`).
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk(tool: str) -> str | None:
    if tool == "python":
        return None
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found; installing Debian's wrk package")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = (
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True).returncode
            == 0
        )
        if not ok:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True)
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if tool == "wrk":
        sys.exit("wrk is not available and could not be installed")
    log("wrk unavailable: using the Python load generator")
    return None


def run_wrk(wrk: str, url: str, headers: dict, duration: int, connections: int) -> dict:
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "requests": total,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run_python(url: str, headers: dict, duration: int, connections: int) -> dict:
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def client():
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        mine, codes = [], {}
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            codes[response.status] = codes.get(response.status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=client) for _ in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    total = len(latencies)
    return {
        "rps": total / elapsed,
        "p50": latencies[total // 2],
        "p99": latencies[min(total - 1, int(total * 0.99))],
        "requests": total,
        "non2xx": sum(count for code, count in statuses.items() if not 200 <= code < 400),
    }


class Server:
    def __init__(self, env: dict, workers: int) -> None:
        self.port = free_port()
        self.metrics_dir = tempfile.mkdtemp(prefix="paytrust-bench-prom-")
        self.env = {
            **env,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            "LOG_LEVEL": "WARNING",  # no access log line per request during the bench
        }

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(
            [PY, "-m", "gunicorn", "paytrust.wsgi:application", "-c", "python:paytrust.gunicorn_conf"],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{self.port}"
        for _ in range(240):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return base
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def manage(env: dict, *args: str) -> str:
    out = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def redis_ok(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def in_process(env: dict, plaintext: str) -> list[tuple[str, str]]:
    """Timings inside one process: Argon2 verify vs the cached paths; a rate-limit hit per store."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test import RequestFactory

    from apikeys.authentication import authenticate_key, verified_cache
    from apikeys.models import ApiKey
    from apikeys.ratelimit import rate_limit_hit
    from apikeys.services import HASHER, split_key

    key = ApiKey.objects.get(prefix=split_key(plaintext))
    rows = []

    def timed(fn, n: int) -> float:
        fn()
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    argon = timed(lambda: HASHER.verify(key.secret_hash, plaintext), 15)
    rows.append(
        ("Argon2id verify (time_cost=3, 64 MiB), paid once per key and process", f"{argon * 1000:.1f} ms")
    )
    digest = verified_cache.digest(plaintext)
    verified_cache.remember(key, digest)
    cached = timed(lambda: verified_cache.hit(key, verified_cache.digest(plaintext)), 20000)
    rows.append(("cached check: HMAC-SHA256 digest + constant-time compare", f"{cached * 1e6:.1f} µs"))
    request = RequestFactory().get("/v1/merchant", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    full = timed(lambda: authenticate_key(request, plaintext), 2000)
    rows.append(("authenticate_key, key seen before (incl. the key-row SELECT)", f"{full * 1000:.3f} ms"))

    settings.REDIS_URL = ""
    bucket = f"bench_{time.time_ns()}"
    pg_empty = timed(lambda: rate_limit_hit(bucket=f"{bucket}_{time.perf_counter_ns()}", limit=1000), 500)
    rows.append(("rate-limit hit, PostgreSQL, empty window", f"{pg_empty * 1000:.3f} ms"))
    for _ in range(999):
        rate_limit_hit(bucket=bucket, limit=1000)
    pg_full = timed(lambda: rate_limit_hit(bucket=bucket, limit=1000), 500)
    rows.append(
        ("rate-limit hit, PostgreSQL, window holding 1000 hits (refused)", f"{pg_full * 1000:.3f} ms")
    )
    redis_url = env.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_ok(redis_url):
        settings.REDIS_URL = redis_url
        r = timed(lambda: rate_limit_hit(bucket=f"{bucket}_r", limit=10**7), 2000)
        rows.append(("rate-limit hit, Redis", f"{r * 1000:.3f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()

    env = dict(os.environ, PAYTRUST_ALLOW_DEV_SECRET="true", DB_POOL_MIN="1")
    env.setdefault("FIELD_ENCRYPTION_KEYS", "rLNTU-eyDlvYDc4o1gMLqW9B6Wv4ST1ZnWrcs5oudIY=")
    if not env.get("DATABASE_URL"):
        lines = subprocess.run(
            [PY, "scripts/devdb.py", "paytrust_bench_auth"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        env["DATABASE_URL"] = re.search(r"DATABASE_URL='([^']+)'", lines).group(1)
    wrk = ensure_wrk(args.tool)
    log(f"database {env['DATABASE_URL']}; migrating")
    manage(env, "migrate", "--noinput")
    merchant = manage(env, "create_merchant", "--name", "Bench", "--rate-limit", str(10**7))
    plaintext = manage(env, "create_api_key", "--merchant", merchant, "--mode", "test", "--name", "bench")
    auth = {"Authorization": f"Bearer {plaintext}"}
    redis_url = env.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

    def load(url: str, headers: dict) -> dict:
        if wrk:
            return run_wrk(wrk, url, headers, args.duration, args.connections)
        return run_python(url, headers, args.duration, args.connections)

    configs = [
        (
            "rate limit off",
            {"RATE_LIMIT_ENABLED": "false", "REDIS_URL": ""},
            [
                ("healthz", "/healthz", {}),
                ("api-no-key (401)", "/v1/merchant", {}),
                ("api-auth", "/v1/merchant", auth),
            ],
        ),
        (
            "rate limit on, PostgreSQL",
            {"RATE_LIMIT_ENABLED": "true", "REDIS_URL": ""},
            [
                ("api-auth-rl-pg", "/v1/merchant", auth),
            ],
        ),
    ]
    if redis_ok(redis_url):
        configs.append(
            (
                "rate limit on, Redis",
                {"RATE_LIMIT_ENABLED": "true", "REDIS_URL": redis_url},
                [
                    ("api-auth-rl-redis", "/v1/merchant", auth),
                ],
            )
        )
    results = []
    for label, extra, scenarios in configs:
        with Server({**env, **extra}, args.workers) as base:
            for name, path, headers in scenarios:
                load(base + path, headers)  # warm-up: every worker verifies the key once, pools fill
                log(f"{name} ({label}) for {args.duration}s")
                results.append((name, label, load(base + path, headers)))

    micro = in_process(env, plaintext)
    tool = "wrk 2 threads" if wrk else "python threads"
    header = [
        f"# Auth bench {datetime.now(UTC).isoformat(timespec='seconds')}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with the load generator), "
        f"Python {platform.python_version()}; gunicorn {args.workers} workers × 4 threads (gthread); "
        f"{tool}, {args.connections} connections, {args.duration} s per scenario.",
        f"Command: `{' '.join([Path(PY).name, *sys.argv])}`",
        "",
        "| scenario | server | req/s | p50 ms | p99 ms | requests | non-2xx |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    table = [
        f"| {name} | {label} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['requests']} | {r['non2xx']} |"
        for name, label, r in results
    ]
    micro_table = ["", "| in-process (median) | time |", "| --- | ---: |"] + [
        f"| {a} | {b} |" for a, b in micro
    ]
    report = "\n".join(header + table + micro_table) + "\n"
    print(report)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"auth-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.md").write_text(report)


if __name__ == "__main__":
    main()
