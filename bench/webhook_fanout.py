"""Outbound webhook fan-out benchmark: N events x M local endpoints, delivered by real procrastinate workers.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/paytrust_bench PAYTRUST_ALLOW_DEV_SECRET=true \
    FIELD_ENCRYPTION_KEYS=<fernet key> .venv/bin/python bench/webhook_fanout.py --events 1000 --endpoints 3 \
        --workers 2 --concurrency 8

What it does: migrates the database, starts M receivers (threaded HTTP servers in this process, answering 200 at
once), registers M test-mode endpoints of a fresh merchant, starts W `manage.py procrastinate worker -q
outbound_webhooks -c C` subprocesses, then records N `invoice.paid` events (each in its own transaction, as a
state change would) and waits until all N x M deliveries succeeded. It checks that every receiver got every event
exactly once and that a sample verifies with the `standardwebhooks` library, and prints the throughput and the
event-to-delivery latency (p50/p95/max). The receivers share the machine (and the GIL of this process).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[str] = []
        self.sample: tuple[bytes, dict] | None = None
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.ids.append(self.headers["webhook-id"])
                    if receiver.sample is None:
                        receiver.sample = (body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs in parallel per worker process")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--drain",
        action="store_true",
        help="record all events first, then start the workers and time how fast they drain the backlog",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from standardwebhooks.webhooks import Webhook

    from merchants.models import Merchant
    from webhooks.outbound.models import Delivery, DeliveryStatus
    from webhooks.outbound.services import endpoint_create, event_record

    call_command("migrate", verbosity=0)
    receivers = [Receiver() for _ in range(args.endpoints)]
    merchant = Merchant.objects.create(name=f"bench {time.time():.0f}")
    secrets = []
    for receiver in receivers:
        _, secret = endpoint_create(merchant=merchant, mode="test", url=receiver.url, enabled_events=["*"])
        secrets.append(secret)

    worker_cmd = [
        sys.executable,
        "manage.py",
        "procrastinate",
        "worker",
        "-q",
        "outbound_webhooks",
        "-c",
        str(args.concurrency),
    ]
    env = {**os.environ, "PROCRASTINATE_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING"}

    def record_events() -> None:
        for i in range(args.events):
            with transaction.atomic():
                event_record(
                    merchant=merchant,
                    mode="test",
                    type="invoice.paid",
                    data={
                        "id": f"inv_bench_{i}",
                        "object": "invoice",
                        "status": "paid",
                        "amount_paid": "150000",
                    },
                )

    expected = args.events * args.endpoints
    deliveries = Delivery.objects.filter(endpoint__merchant=merchant)
    if args.drain:  # backlog first, then time the workers alone (their boot time included)
        t0 = time.monotonic()
        record_events()
        record_seconds = time.monotonic() - t0
    workers = []
    try:
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                worker_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for _ in range(args.workers)
        ]
        if not args.drain:  # live: workers running while the events are recorded
            time.sleep(3)  # let the workers boot and start listening
            started = time.monotonic()
            record_events()
            record_seconds = time.monotonic() - started
        while True:
            done = deliveries.filter(status=DeliveryStatus.SUCCEEDED).count()
            if done >= expected:
                break
            if time.monotonic() - started > args.timeout:
                print(f"TIMEOUT: {done}/{expected} delivered", file=sys.stderr)
                return 1
            time.sleep(0.25)
        finished = time.monotonic()
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()

    # In drain mode the latency includes the time the event waited in the backlog before workers started.
    latencies = [
        (succeeded - created).total_seconds()
        for succeeded, created in deliveries.values_list("succeeded_at", "event__created_at")
    ]
    attempts = sum(deliveries.values_list("attempt_count", flat=True))
    for receiver, secret in zip(receivers, secrets, strict=True):
        assert len(receiver.ids) == args.events, (len(receiver.ids), args.events)
        assert len(set(receiver.ids)) == args.events, "duplicate deliveries"
        body, headers = receiver.sample
        Webhook(secret).verify(body, headers)
        receiver.stop()

    total = finished - started
    result = {
        "events": args.events,
        "endpoints": args.endpoints,
        "deliveries": expected,
        "attempts": attempts,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "mode": "drain" if args.drain else "live",
        "record_seconds": round(record_seconds, 2),
        "total_seconds": round(total, 2),
        "deliveries_per_second": round(expected / total, 1),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(_pct(latencies, 95), 3),
        "latency_max_s": round(max(latencies), 3),
        "cpus": os.cpu_count(),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
