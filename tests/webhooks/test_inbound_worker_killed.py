"""A real `manage.py procrastinate worker` killed with SIGKILL in the middle of processing an inbound gateway
webhook: no event is lost and the payment is applied exactly once after another worker takes over.

The worker is stopped mid-job without any test hook in the code: the test holds the invoice's row lock from its
own connection, so the worker blocks inside `invoice_apply_payment`, in its processing transaction, with the
attempt open (`processing`, its job `doing`). Then it is killed, the lock released and a new worker started: the
killed worker's heartbeat stops, procrastinate's stalled-job detection (the periodic `jobs.retry_stalled_jobs`,
shortened thresholds below) hands the job back, and its next run closes the interrupted attempt and applies it.
"""

# ruff: noqa: F811

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.test import Client

from gateways.models import SandboxCheckoutSession
from invoices.models import PaymentApplication
from payments.models import Payment
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import clean_jobs, initiate, merchant  # noqa: F401
from tests.webhooks.jobs_support import job_of
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _test_database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_worker(log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "TEST_DATABASE_NAME": "",
        "PAYTRUST_ALLOW_DEV_SECRET": "true",
        "INBOUND_WEBHOOK_RETRY_DELAYS": "1,1,1",
        "JOBS_HEARTBEAT_SECONDS": "1",
        "JOBS_STALLED_WORKER_SECONDS": "4",
        "JOBS_STALLED_RETRY_CRON": "* * * * * */1",
    }
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "procrastinate",
            "worker",
            "-q",
            "inbound_webhooks,housekeeping",
            "-c",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _blocked_on_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_worker_killed_mid_processing_loses_nothing_and_applies_once(api, merchant, clean_jobs, tmp_path):
    invoice = make_invoice(merchant, amount="150000")
    payment = initiate(api, invoice.id)
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    path = "/" + payment["payment_url"].split("://", 1)[1].split("/", 1)[1]
    assert Client().post(path, {"nonce": session.form_nonce, "action": "pay"}).status_code == 200
    event = InboundNotification.objects.get()

    blocker = psycopg.connect(_test_database_url())
    blocker.execute("SELECT id FROM invoices_invoice WHERE id = %s FOR UPDATE", (invoice.id,))
    worker = _start_worker(tmp_path / "worker1.log")
    try:
        _wait(lambda: InboundNotification.objects.get(pk=event.pk).status == "processing", 60, "the claim")
        _wait(_blocked_on_lock, 30, "the worker to block inside its processing transaction")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        blocker.rollback()
        blocker.close()

    killed = InboundNotification.objects.get(pk=event.pk)
    assert killed.status == "processing"  # started, never finished: the kill lost the work in flight...
    assert Payment.objects.get(pk=payment["id"]).status == "pending"  # ...and nothing half-applied
    assert not PaymentApplication.objects.filter(payment_id=payment["id"]).exists()

    worker = _start_worker(tmp_path / "worker2.log")
    try:
        _wait(
            lambda: InboundNotification.objects.get(pk=event.pk).status == "processed",
            90,
            "the event to be processed",
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)

    assert Payment.objects.get(pk=payment["id"]).status == "succeeded"
    assert PaymentApplication.objects.filter(payment_id=payment["id"]).count() == 1
    body = api.get(f"/v1/invoices/{invoice.id}").json()
    assert (body["status"], body["amount_paid"]) == ("paid", "150000")
    attempts = list(InboundNotificationAttempt.objects.filter(notification_id=event.pk).order_by("number"))
    assert len(attempts) >= 2 and not attempts[0].succeeded and attempts[-1].succeeded
    assert "interrupted" in attempts[0].error
    assert job_of(event.pk)["status"] == "succeeded"  # the same job, handed back by the stalled-job retry
