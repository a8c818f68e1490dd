"""The daily ledger verification (reporting.tasks.verify_ledger): it records a LedgerCheck, the back office shows
it read-only to the staff roles, and /metrics exposes the latest one as gauges."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client

from apikeys.services import Actor
from ledger.models import Entry, Movement
from payments.models import Payment
from paytrust.jobs import app
from reporting import tasks
from reporting.models import LedgerCheck
from reporting.roles import staff_save


def test_the_check_is_a_daily_periodic_job():
    app.perform_import_paths()
    scheduled = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert scheduled["reporting.verify_ledger"] == "41 2 * * *"


def _gauge(name: str) -> float | None:
    text = Client().get("/metrics").content.decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


@pytest.mark.django_db(transaction=True)
def test_the_job_records_each_run_and_the_gauges_show_the_latest(payments, merchant):
    """Committed data and the job's own REPEATABLE READ snapshot (transaction=True: no test transaction around)."""
    tasks.verify_ledger(timestamp=0)

    clean = LedgerCheck.objects.get()
    assert clean.ok and clean.breaks_count == 0 and clean.breaks == []
    assert clean.summary["movements"] == Movement.objects.count() > 0
    assert clean.summary["entries"] == Entry.objects.count()
    assert clean.started_at <= clean.finished_at
    assert _gauge("paytrust_ledger_breaks") == 0
    assert _gauge("paytrust_ledger_check_timestamp_seconds") == pytest.approx(clean.finished_at.timestamp())

    payment = Payment.objects.filter(merchant=merchant, currency="IDR").first()
    movement = Movement.objects.get(source_type="payment", source_id=payment.pk, type="payment")
    with connection.cursor() as cursor:  # committed corruption, around the append-only trigger
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                "UPDATE ledger_entry SET amount_minor = amount_minor + 5 WHERE movement_id = %s "
                "AND amount_minor > 0",
                [movement.pk],
            )
        finally:
            cursor.execute("SET session_replication_role = origin")

    tasks.verify_ledger(timestamp=0)

    broken = LedgerCheck.objects.order_by("-started_at").first()
    assert not broken.ok and broken.breaks_count >= 3
    assert {"invariant": "movement_unbalanced", "object": movement.pk, "detail": "entries sum to 5"} in (
        broken.breaks
    )
    assert any(b["invariant"] == "payment_posting" and b["object"] == payment.pk for b in broken.breaks)
    assert _gauge("paytrust_ledger_breaks") == broken.breaks_count


@pytest.mark.django_db
def test_no_check_yet_means_no_gauge_sample():
    assert _gauge("paytrust_ledger_breaks") is None
    assert "# TYPE paytrust_ledger_breaks gauge" in Client().get("/metrics").content.decode()


def _login(role: str) -> Client:
    saved = staff_save(
        username=f"{role}-user",
        email=f"{role}@paytrust.test",
        role=role,
        password="x" * 16,
        actor=Actor.system(),
    )
    client = Client()
    assert client.login(username=saved.user.username, password="x" * 16)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["support", "finance"])
def test_support_and_finance_read_the_checks_and_change_nothing(role):
    check = LedgerCheck.objects.create(
        started_at="2026-11-01T02:41:00Z",
        finished_at="2026-11-01T02:41:09Z",
        ok=False,
        breaks_count=1,
        breaks=[{"invariant": "movement_unbalanced", "object": "txn_x", "detail": "entries sum to 5"}],
        summary={"movements": 10, "duration_seconds": 9.0},
    )
    client = _login(role)

    listing = client.get("/admin/reporting/ledgercheck/")
    detail = client.get(f"/admin/reporting/ledgercheck/{check.pk}/change/")

    assert listing.status_code == 200 and detail.status_code == 200
    assert "txn_x" in detail.content.decode() and "entries sum to 5" in detail.content.decode()
    assert client.get("/admin/reporting/ledgercheck/add/").status_code == 403
    assert client.post(f"/admin/reporting/ledgercheck/{check.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LedgerCheck.objects.filter(pk=check.pk).exists()
    assert "Ledger checks" in client.get("/admin/").content.decode()
