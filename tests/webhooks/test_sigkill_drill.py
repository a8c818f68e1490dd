"""The SIGKILL drill (issue 10): 50 sandbox payments while the worker is killed with SIGKILL every second (a new one
started after each kill), then one clean worker: every invoice is paid within 60 s of the last kill, every payment
applied exactly once, every `invoice.paid` delivered to the merchant.

Real `manage.py procrastinate worker` subprocesses on the inbound, outbound and housekeeping queues. Nothing in the
code knows it is being killed: a killed worker's jobs stay `doing` until its heartbeat is older than
JOBS_STALLED_WORKER_SECONDS, then the periodic `jobs.retry_stalled_jobs` hands them back (shortened thresholds
below; the defaults are 10 s heartbeats, 30 s stall, every minute). The retry delays are the production ones: an
interrupted attempt is retried at once, not after a failure delay.
"""

# ruff: noqa: F811

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from gateways.models import SandboxCheckoutSession
from invoices.models import Invoice, PaymentApplication
from payments.models import Payment
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import clean_jobs, initiate, merchant  # noqa: F401
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt
from webhooks.outbound.models import Delivery, DeliveryAttempt
from webhooks.outbound.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = 50
KILL_EVERY_SECONDS = 1.0
KILLS_AFTER_THE_LAST_PAYMENT = 5
RECOVERY_BOUND_SECONDS = 60.0
QUEUES = "inbound_webhooks,outbound_webhooks,housekeeping"


def _test_database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_worker(log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "TEST_DATABASE_NAME": "",
        "PAYTRUST_ALLOW_DEV_SECRET": "true",
        "JOBS_HEARTBEAT_SECONDS": "1",
        "JOBS_STALLED_WORKER_SECONDS": "3",
        "JOBS_STALLED_RETRY_CRON": "* * * * * */1",
    }
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "manage.py", "procrastinate", "worker", "-q", QUEUES, "-c", "4"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class Killer(threading.Thread):
    """Keeps one worker running and kills it with SIGKILL every second, starting a new one after each kill."""

    def __init__(self, log: Path) -> None:
        super().__init__(daemon=True)
        self.log = log
        self.stop_after: int | None = None  # kills still to make once set
        self.kills = 0
        self.last_kill = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while self.stop_after is None or self.stop_after > 0:
                worker = _start_worker(self.log)
                time.sleep(KILL_EVERY_SECONDS)
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
                self.last_kill = time.monotonic()
                self.kills += 1
                if self.stop_after is not None:
                    self.stop_after -= 1
        finally:
            self.done.set()


def _pay(api, invoice) -> str:
    """Initiate through the API, then press "pay" on the sandbox checkout page. Returns the payment id."""
    payment = initiate(api, invoice.id)
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    path = "/" + payment["payment_url"].split("://", 1)[1].split("/", 1)[1]
    assert Client().post(path, {"nonce": session.form_nonce, "action": "pay"}).status_code == 200
    return payment["id"]


def _all_done(invoice_ids: list[str]) -> bool:
    paid = Invoice.objects.filter(pk__in=invoice_ids, status="paid").count() == len(invoice_ids)
    delivered = not Delivery.objects.exclude(status="succeeded").exists()
    return paid and delivered


def test_fifty_payments_survive_a_worker_killed_every_second(
    api, merchant, clean_jobs, webhook_receiver, tmp_path
):
    endpoint_create(merchant=merchant, mode="test", url=webhook_receiver.url, enabled_events=["invoice.paid"])
    invoices = [
        make_invoice(merchant, amount=str(100000 + i), customer_email=f"payer{i}@example.com")
        for i in range(PAYMENTS)
    ]
    log = tmp_path / "workers.log"

    killer = Killer(log)
    killer.start()
    try:
        payment_ids = [_pay(api, invoice) for invoice in invoices]
        killer.stop_after = KILLS_AFTER_THE_LAST_PAYMENT
        assert killer.done.wait(60), "the killer did not stop"
    finally:
        killer.stop_after = 0
        killer.done.wait(30)

    clean = _start_worker(log)
    try:
        invoice_ids = [invoice.id for invoice in invoices]
        while not _all_done(invoice_ids):
            elapsed = time.monotonic() - killer.last_kill
            assert elapsed < RECOVERY_BOUND_SECONDS, (
                f"not done {elapsed:.0f} s after the last kill: "
                f"{Invoice.objects.filter(pk__in=invoice_ids).exclude(status='paid').count()} invoices unpaid, "
                f"{Delivery.objects.exclude(status='succeeded').count()} deliveries not succeeded\n"
                + log.read_text()[-3000:]
            )
            time.sleep(0.25)
        recovered_in = time.monotonic() - killer.last_kill
    finally:
        os.killpg(clean.pid, signal.SIGTERM)
        clean.wait(30)

    # Each payment applied exactly once, each notification processed by one successful attempt.
    assert Payment.objects.filter(pk__in=payment_ids, status="succeeded").count() == PAYMENTS
    for payment_id in payment_ids:
        assert PaymentApplication.objects.filter(payment_id=payment_id).count() == 1, payment_id
    assert InboundNotification.objects.count() == PAYMENTS
    assert set(InboundNotification.objects.values_list("status", flat=True)) == {"processed"}
    attempts = InboundNotificationAttempt.objects
    assert attempts.filter(succeeded=True).count() == PAYMENTS
    assert not attempts.filter(finished_at__isnull=True).exists()  # interrupted ones were closed
    # Every invoice.paid reached the merchant (at least once: a request interrupted by a kill may be repeated).
    received = {request.json()["data"]["id"] for request in webhook_receiver.requests}
    assert received == {invoice.id for invoice in invoices}

    interrupted = attempts.filter(error__startswith="interrupted").count()
    most = max(InboundNotification.objects.values_list("attempts", flat=True))
    resent = DeliveryAttempt.objects.filter(error__startswith="attempt interrupted").count()
    print(  # noqa: T201 - the drill's report (pytest -s)
        f"\nSIGKILL drill: {killer.kills} kills, all {PAYMENTS} invoices paid {recovered_in:.1f} s after the last;"
        f" {interrupted} processing attempts interrupted and retried (at most {most} attempts for one"
        f" notification), {resent} deliveries interrupted and re-sent"
    )
