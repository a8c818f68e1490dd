"""Real workers: a `manage.py procrastinate worker` killed with SIGKILL mid-request (its job is handed back by
procrastinate's stalled-job detection, thresholds shortened below), and a slow endpoint that must not hold up the
others."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from webhooks.outbound.models import Delivery, DeliveryStatus
from webhooks.outbound.services import endpoint_create, event_record

ROOT = Path(__file__).resolve().parents[2]
INVOICE = {"id": "inv_k", "object": "invoice", "status": "paid"}


def _test_database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_worker(log_path: Path, *, concurrency: int = 2, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "TEST_DATABASE_NAME": "",
        "OUTBOUND_WEBHOOK_TIMEOUT_SECONDS": "8",
        "JOBS_HEARTBEAT_SECONDS": "1",
        "JOBS_STALLED_WORKER_SECONDS": "4",
        "JOBS_STALLED_RETRY_CRON": "* * * * * */1",
        "PAYTRUST_ALLOW_DEV_SECRET": "true",
        **extra_env,
    }
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "procrastinate",
            "worker",
            "-q",
            "outbound_webhooks,housekeeping",
            "-c",
            str(concurrency),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _stop(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(5)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_delivery_still_delivers_after_restart(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs, tmp_path
):
    webhook_receiver.stall_next(1)
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
    delivery = Delivery.objects.get(event=event)

    first = _start_worker(tmp_path / "worker1.log")
    try:
        assert webhook_receiver.wait_for(1, timeout=60), (tmp_path / "worker1.log").read_text()
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENDING  # the request is in flight, nothing recorded yet
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    webhook_receiver.release()  # the stalled handler's answer goes nowhere

    second = _start_worker(tmp_path / "worker2.log")
    try:
        done = _wait(lambda: Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED, 90)
        assert done, (tmp_path / "worker2.log").read_text()
    finally:
        _stop(second)

    assert webhook_receiver.count() == 2  # at least once: the interrupted request, then the real delivery
    payloads = webhook_receiver.verified_payloads(receiver_endpoint.secret)
    assert {p["id"] for p in payloads} == {event.id}
    attempts = list(delivery.attempts.order_by("id").values_list("succeeded", "error"))
    assert attempts[0][0] is False and attempts[0][1].startswith("attempt interrupted")
    assert attempts[-1] == (True, "")


@pytest.mark.django_db(transaction=True)
def test_slow_endpoint_does_not_hold_up_other_endpoints(
    merchant, run_outbound_jobs, webhook_receiver_factory, tmp_path
):
    slow = webhook_receiver_factory("/slow")
    fast = webhook_receiver_factory("/fast")
    endpoint_create(merchant=merchant, mode="test", url=slow.url, enabled_events=["*"])
    endpoint_create(merchant=merchant, mode="test", url=fast.url, enabled_events=["*"])
    slow.stall_next(100)
    with transaction.atomic():
        events = [
            event_record(merchant=merchant, mode="test", type="invoice.paid", data={**INVOICE, "n": i})
            for i in range(5)
        ]

    log = tmp_path / "worker.log"
    worker = _start_worker(log, concurrency=3, OUTBOUND_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT="1")
    try:
        assert fast.wait_for(5, timeout=90), log.read_text()  # all five reached the fast endpoint...
        assert slow.count() == 1  # ...while the slow one holds exactly one request (its in-flight cap)
        slow.stall_next(0)
        slow.release()
        all_done = _wait(
            lambda: (
                set(Delivery.objects.filter(event__in=events).values_list("status", flat=True))
                == {"succeeded"}
            ),
            90,
        )
        assert all_done, log.read_text()
    finally:
        slow.stall_next(0)
        slow.release()
        _stop(worker)
    assert fast.count() == 5 and slow.count() == 5
