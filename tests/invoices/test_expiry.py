"""Expiry: the periodic job and `manage.py expire_invoices` (payments app: each `invoice.expired` lists the invoice's
payments), installment plans staying open while being paid."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from invoices.calc import InstallmentsIn
from invoices.models import Invoice
from invoices.services import invoice_apply_payment, invoice_mark_payment_initiated
from payments.services import invoices_expire_overdue
from payments.tasks import expire_overdue_invoices
from paytrust.jobs import app
from tests.invoices.factories import make_invoice

pytestmark = pytest.mark.django_db


def later(**delta):
    return timezone.now() + timedelta(**delta)


def test_job_expires_overdue_open_invoices_once_and_records_events(merchant, events):
    draft = make_invoice(merchant, expires_in=timedelta(hours=2))
    pending = make_invoice(merchant, expires_in=timedelta(hours=2))
    invoice_mark_payment_initiated(invoice_id=pending.id)
    not_yet = make_invoice(merchant, expires_in=timedelta(hours=5))
    paid = make_invoice(merchant, expires_in=timedelta(hours=2))
    invoice_mark_payment_initiated(invoice_id=paid.id)
    invoice_apply_payment(
        invoice_id=paid.id, payment_id="p", amount_minor=paid.total_minor, currency="IDR",
        installment_number=None, paid_at=timezone.now(), payments=[],
    )  # fmt: skip

    assert invoices_expire_overdue(now=later(hours=3)) == 2
    statuses = dict(Invoice.objects.values_list("id", "status"))
    assert statuses == {draft.id: "expired", pending.id: "expired", not_yet.id: "draft", paid.id: "paid"}
    expired_events = [data["id"] for kind, data in events if kind == "invoice.expired"]
    assert sorted(expired_events) == sorted([draft.id, pending.id])
    assert all(data["status"] == "expired" for kind, data in events if kind == "invoice.expired")
    assert invoices_expire_overdue(now=later(hours=3)) == 0  # idempotent
    assert Invoice.objects.get(pk=draft.id).expired_at is not None


def test_job_walks_more_than_one_batch(merchant):
    for _ in range(7):
        make_invoice(merchant, expires_in=timedelta(hours=2))
    assert invoices_expire_overdue(now=later(hours=3), batch_size=3) == 7
    assert set(Invoice.objects.values_list("status", flat=True)) == {"expired"}


def test_periodic_task_is_registered_every_minute_and_runs_the_service(merchant):
    periodic = [
        p for p in app.periodic_registry.periodic_tasks.values() if p.task.name == "invoices.expire_overdue"
    ]
    assert len(periodic) == 1 and periodic[0].cron == "* * * * *"
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    Invoice.objects.filter(pk=invoice.pk).update(expires_at=later(minutes=-1), lapses_at=later(minutes=-1))
    assert expire_overdue_invoices(timestamp=int(timezone.now().timestamp())) == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "expired"


def test_management_command_expires_and_dry_run_does_not(merchant):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    Invoice.objects.filter(pk=invoice.pk).update(expires_at=later(minutes=-1), lapses_at=later(minutes=-1))
    out = StringIO()
    call_command("expire_invoices", "--dry-run", stdout=out)
    assert "1 invoice(s) would expire" in out.getvalue()
    assert Invoice.objects.get(pk=invoice.pk).status == "draft"
    out = StringIO()
    call_command("expire_invoices", stdout=out)
    assert "Expired 1 invoice(s)" in out.getvalue()
    assert Invoice.objects.get(pk=invoice.pk).status == "expired"


def test_an_installment_plan_being_paid_stays_open_until_its_last_due_date(merchant):
    invoice = make_invoice(
        merchant,
        lines=[("Course", 1, "300000", "0")],
        installments=InstallmentsIn(count=3),
        expires_in=timedelta(days=1),
    )
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    invoice_apply_payment(
        invoice_id=invoice.id, payment_id="p1", amount_minor=100000, currency="IDR",
        installment_number=None, paid_at=timezone.now(), payments=[],
    )  # fmt: skip
    invoice.refresh_from_db()
    last_due = invoice.expires_at.date() + timedelta(days=60)
    assert invoice.lapses_at == datetime.combine(
        last_due + timedelta(days=1), datetime.min.time(), tzinfo=UTC
    )

    assert invoices_expire_overdue(now=later(days=2)) == 0  # past expires_at, plan still running
    assert invoice_mark_payment_initiated(invoice_id=invoice.id, now=later(days=31)).installment.number == 2
    assert invoices_expire_overdue(now=invoice.lapses_at + timedelta(seconds=1)) == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "expired"


def test_unpaid_installment_plan_expires_at_expires_at(merchant):
    invoice = make_invoice(merchant, installments=InstallmentsIn(count=3), expires_in=timedelta(days=1))
    assert invoices_expire_overdue(now=later(days=1, minutes=1)) == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "expired"
