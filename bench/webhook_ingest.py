"""Inbound gateway webhook benchmark: ack latency/throughput under load, and end-to-end processing latency.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/paytrust_bench PAYTRUST_ALLOW_DEV_SECRET=true \
    FIELD_ENCRYPTION_KEYS=<fernet key> .venv/bin/python bench/webhook_ingest.py --payments 1000 --clients 16

What it does: migrates the database; creates a merchant (with its sandbox gateway account), N invoices and N
payments through the real services (the sandbox gateway, in process); starts gunicorn (paytrust.wsgi with
paytrust/gunicorn_conf.py, W workers x T threads) and a `manage.py procrastinate worker -q inbound_webhooks`
subprocess; then K client threads POST one signed sandbox webhook per payment (status succeeded, full amount) to
`/v1/webhooks/sandbox/{account}` as fast as they can, `--duplicates` extra copies of each interleaved. It waits
until every stored event is processed and checks every payment succeeded and every invoice is paid, exactly once.

Reported: acks/s over the send phase; ack latency (client-side, request sent -> 200 read) p50/p95/p99/max;
end-to-end processing latency (event stored -> processed, from the database) p50/p95/max; first-try success.
Everything (clients, gunicorn, worker, PostgreSQL) shares the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument(
        "--duplicates", type=int, default=0, help="extra copies of each webhook (dedup under load)"
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--job-workers", type=int, default=1, help="procrastinate worker processes")
    parser.add_argument("--job-concurrency", type=int, default=4, help="jobs in parallel per worker process")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="send at most this many webhooks/s in total (0: as fast as possible)",
    )
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()

    import django

    django.setup()
    import requests
    from django.core.management import call_command
    from django.db.models import Count, Q

    from gateways.registry import gateway_for_account
    from gateways.sandbox import webhooks as sandbox_webhooks
    from gateways.services import merchant_onboard
    from invoices.calc import LineItemIn
    from invoices.models import Invoice
    from invoices.services import invoice_create
    from payments.models import Payment
    from payments.services import payment_initiate
    from webhooks.inbound.models import InboundNotification

    call_command("migrate", verbosity=0)
    merchant = merchant_onboard(name=f"bench ingest {time.time():.0f}")
    account = merchant.gateway_accounts.get(gateway="sandbox", mode="test")
    secret = gateway_for_account(account).credentials["signing_secret"]

    t0 = time.monotonic()
    payments: list[Payment] = []
    for i in range(args.payments):
        invoice = invoice_create(
            merchant=merchant,
            mode="test",
            currency="IDR",
            gateway=account.id,
            line_items=[LineItemIn(f"Item {i}", 1, str(10000 + i), "0.11")],
        )
        payments.append(payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment)
    print(f"setup: {len(payments)} invoices + payments in {time.monotonic() - t0:.1f} s")

    from django.utils import timezone

    bodies = []
    for payment in payments:
        bodies.append(
            sandbox_webhooks.build_body(
                event_id=f"sbxevt_bench_{payment.id}",
                action="pay",
                checkout_id=payment.gateway_reference,
                payment_id=payment.id,
                invoice_id=payment.invoice_id,
                installment=payment.installment_number,
                status="succeeded",
                amount_minor=payment.amount_minor,
                requested_minor=payment.amount_minor,
                currency=payment.currency,
                occurred_at=timezone.now().replace(microsecond=0),
            )
        )
    sends = [body for body in bodies for _ in range(1 + args.duplicates)]
    random.Random(7).shuffle(sends)

    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(args.web_workers),
        "GUNICORN_THREADS": str(args.web_threads),
        "LOG_LEVEL": "INFO",  # the access log line (duration_ms per request) gives the server-side latency
        "RATE_LIMIT_ENABLED": "false",
    }
    import tempfile

    server_log = tempfile.NamedTemporaryFile(prefix="webhook_ingest_gunicorn_", suffix=".log", delete=False)
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "paytrust.wsgi", "-c", "python:paytrust.gunicorn_conf"],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=server_log,
        start_new_session=True,
    )
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "procrastinate",
                "worker",
                "-q",
                "inbound_webhooks",
                "-c",
                str(args.job_concurrency),
            ],
            cwd=ROOT,
            env={**env, "LOG_LEVEL": "WARNING", "PROCRASTINATE_LOG_LEVEL": "ERROR"},
            start_new_session=True,
        )
        for _ in range(args.job_workers)
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/healthz")
        url = f"{base}/v1/webhooks/sandbox/{account.id}"
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        queue = list(reversed(sends))
        sent = [0]

        def client() -> None:
            session = requests.Session()
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                    index = sent[0]
                    sent[0] += 1
                if args.rate:
                    wait = send_started + index / args.rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                headers = sandbox_webhooks.sign(secret, body)
                started = time.perf_counter()
                response = session.post(url, data=body, headers=headers, timeout=30)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        send_started = time.monotonic()  # noqa: F841 - read by the client threads
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        send_seconds = time.monotonic() - send_started

        ids = [payment.id for payment in payments]
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            left = (
                InboundNotification.objects.filter(payment_reference__in=ids)
                .exclude(status="processed")
                .count()
            )
            if left == 0:
                break
            time.sleep(0.5)
        drained = time.monotonic() - send_started

        events = list(
            InboundNotification.objects.filter(payment_reference__in=ids).values_list(
                "created_at", "processed_at", "attempts", "status"
            )
        )
        e2e = [(done - created).total_seconds() for created, done, _, status in events if done is not None]
        first_try = sum(1 for _, _, attempts, status in events if status == "processed" and attempts == 1)
        succeeded = Payment.objects.filter(pk__in=ids, status="succeeded").count()
        paid = Invoice.objects.filter(pk__in=[p.invoice_id for p in payments], status="paid").count()
        dup_groups = (
            InboundNotification.objects.filter(payment_reference__in=ids)
            .values("payment_reference")
            .annotate(n=Count("id"))
            .filter(Q(n__gt=1))
            .count()
        )
        server_ms = []
        with open(server_log.name) as fh:
            for line in fh:
                if (
                    '"route": "/v1/webhooks/<str:gateway>/<str:account_id>"' in line
                    and '"duration_ms"' in line
                ):
                    try:
                        server_ms.append(float(line.split('"duration_ms": ', 1)[1].split(",", 1)[0]))
                    except (IndexError, ValueError):
                        pass
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]

        print(
            f"sent {len(sends)} webhooks ({args.duplicates} duplicates each) with {args.clients} clients"
            + (f" paced at {args.rate:g}/s" if args.rate else " (unpaced)")
            + f"; gunicorn {args.web_workers}x{args.web_threads}, job workers {args.job_workers}x{args.job_concurrency}"
        )
        print(f"HTTP statuses: {statuses}")
        print(f"acks/s: {len(sends) / send_seconds:.1f}  (send phase {send_seconds:.1f} s)")
        print(
            "ack latency ms: p50 {:.1f}  p95 {:.1f}  p99 {:.1f}  max {:.1f}".format(
                *(1000 * _pct(latencies, p) for p in (50, 95, 99, 100))
            )
        )
        print(
            "server-side ack ms (access log duration_ms): p50 {:.1f}  p95 {:.1f}  p99 {:.1f}  max {:.1f}".format(
                *(_pct(server_ms, p) for p in (50, 95, 99, 100))
            )
        )
        print(
            f"events stored: {len(events)} (one per payment: {len(events) == len(ids) and dup_groups == 0}); "
            f"processed {len(e2e)}; first-try success {first_try}/{len(events)}"
        )
        print(
            f"end-to-end processing s: p50 {_pct(e2e, 50):.2f}  p95 {_pct(e2e, 95):.2f}  max {_pct(e2e, 100):.2f}  (all processed {drained:.1f} s after start)"
        )
        print(
            f"payments succeeded {succeeded}/{len(ids)}; invoices paid {paid}/{len(ids)}; load average {load}"
        )
        ok = succeeded == paid == len(ids) and len(events) == len(ids) and set(statuses) == {200}
        return 0 if ok else 1
    finally:
        _stop(gunicorn)
        for worker in workers:
            _stop(worker)


if __name__ == "__main__":
    sys.exit(main())
