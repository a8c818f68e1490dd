"""Voiding an invoice closes its open gateway payment: no money can arrive on a void invoice afterwards."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from invoices.models import Invoice
from payments.models import Payment
from payments.services import invoice_void_closing_payments, payment_reconcile
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


def _queued_reconciles() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args->>'payment_id' FROM procrastinate_jobs "
            "WHERE task_name = 'payments.reconcile_payment' AND status = 'todo' ORDER BY id"
        )
        return [row[0] for row in cursor.fetchall()]


def test_void_expires_the_open_xendit_payment_at_the_gateway(api, merchant, xendit_account, xendit_fake):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == "pending" and payment.expires_at > timezone.now() + timedelta(hours=1)

    before = timezone.now()
    response = api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "void"
    payment.refresh_from_db()
    assert payment.status == "pending"  # the gateway is asked by the job, outside the void's transaction
    assert before <= payment.expires_at <= timezone.now()
    assert _queued_reconciles() == [payment_id]
    assert xendit_fake.invoices[payment.gateway_reference]["status"] == "PENDING"

    payment_reconcile(payment_id=payment_id)  # what the queued payments.reconcile_payment job runs

    payment.refresh_from_db()
    assert payment.status == "expired" and payment.pain002_status == "RJCT"
    assert any(
        r.path.endswith(f"/invoices/{payment.gateway_reference}/expire!") for r in xendit_fake.requests
    )
    assert xendit_fake.invoices[payment.gateway_reference]["status"] == "EXPIRED"
    assert Invoice.objects.get(pk=invoice.id).status == "void"


def test_a_void_that_rolls_back_leaves_the_payment_and_queues_nothing(
    api, merchant, xendit_account, xendit_fake
):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    expires_at = Payment.objects.get(pk=payment_id).expires_at
    Invoice.objects.filter(pk=invoice.id).update(amount_paid_minor=1)  # money received: not voidable

    response = api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json")

    assert response.status_code == 409 and response.json()["error"]["code"] == "invoice_not_voidable"
    assert Payment.objects.get(pk=payment_id).expires_at == expires_at
    assert _queued_reconciles() == []


def test_voiding_a_draft_queues_nothing(api, merchant):
    invoice = make_invoice(merchant)
    assert api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json").status_code == 200
    assert _queued_reconciles() == []


def test_a_payment_paid_at_the_gateway_before_the_job_runs_is_applied_not_expired(
    api, merchant, xendit_account, xendit_fake
):
    invoice = make_invoice(merchant, gateway="xendit")
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    assert api.post(f"/v1/invoices/{invoice.id}/void", {}, format="json").status_code == 200
    payment = Payment.objects.get(pk=payment_id)
    xendit_fake.mark_paid(payment.gateway_reference)  # the customer paid just before the void reached Xendit

    payment_reconcile(payment_id=payment_id)

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert not any(r.path.endswith("/expire!") for r in xendit_fake.requests)
    invoice = Invoice.objects.get(pk=invoice.id)
    assert invoice.status == "void"
    total = api.get(f"/v1/invoices/{invoice.id}").json()["total"]
    assert api.get(f"/v1/invoices/{invoice.id}/overpayment").json()["amount"] == total  # all of it, kept


@pytest.mark.django_db(transaction=True)
def test_void_waits_for_a_payment_being_applied_without_holding_the_invoice(api, merchant, no_jobs):
    """Lock order: a transaction holding one of the invoice's payments (what `payment_apply_gateway_status` locks
    first) can still take the invoice lock (what `invoice_apply_payment` locks next) while a void waits for that
    payment: the void takes the payments before the invoice, so the two cannot deadlock."""
    invoice = make_invoice(merchant)
    payment_id = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    payment_locked, void_waiting = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def applier():
        try:
            with transaction.atomic():
                Payment.objects.select_for_update().get(pk=payment_id)
                payment_locked.set()
                void_waiting.wait(timeout=30)
                try:
                    with transaction.atomic():
                        Invoice.objects.select_for_update(nowait=True).get(pk=invoice.id)
                    outcome["applier_got_invoice"] = True
                except OperationalError:
                    outcome["applier_got_invoice"] = False
        finally:
            connection.close()

    def voider():
        try:
            outcome["void"] = invoice_void_closing_payments(
                merchant=merchant, mode="test", invoice_id=invoice.id
            ).status
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["void"] = repr(exc)
        finally:
            connection.close()

    first = threading.Thread(target=applier)
    first.start()
    assert payment_locked.wait(timeout=30)
    second = threading.Thread(target=voider)
    second.start()
    _wait_until_a_lock_is_awaited()
    void_waiting.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert outcome == {"applier_got_invoice": True, "void": "void"}
    assert Payment.objects.get(pk=payment_id).expires_at <= timezone.now()


def _wait_until_a_lock_is_awaited(deadline_seconds: float = 30) -> None:
    """Poll pg_locks until some backend waits for a lock (the void, blocked on the payment row)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("the void never waited for the payment lock")


@pytest.mark.django_db(transaction=True)
def test_a_payment_initiated_while_the_void_waits_for_the_invoice_is_closed_too(merchant, no_jobs):
    """Initiation inserts its payment under the invoice lock; a void that locked the (then) open payments and waits
    for the invoice must still close a payment committed meanwhile."""
    invoice = make_invoice(merchant)
    invoice_locked, void_waiting = threading.Event(), threading.Event()
    created: list[str] = []
    outcome: dict[str, object] = {}

    def initiator():  # what phase 1 of payment_initiate does: invoice lock, insert the payment, commit
        try:
            with transaction.atomic():
                locked = Invoice.objects.select_for_update().get(pk=invoice.id)
                invoice_locked.set()
                void_waiting.wait(timeout=30)
                payment = Payment.objects.create(
                    merchant=merchant,
                    mode="test",
                    invoice=locked,
                    installment_number=1,
                    gateway_account_id=locked.gateway_account_id,
                    gateway=locked.gateway,
                    currency=locked.currency,
                    amount_minor=locked.total_minor,
                    expires_at=timezone.now() + timedelta(hours=1),
                )
                created.append(payment.pk)
        finally:
            connection.close()

    def voider():
        try:
            outcome["void"] = invoice_void_closing_payments(
                merchant=merchant, mode="test", invoice_id=invoice.id
            ).status
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["void"] = repr(exc)
        finally:
            connection.close()

    first = threading.Thread(target=initiator)
    first.start()
    assert invoice_locked.wait(timeout=30)
    second = threading.Thread(target=voider)
    second.start()
    _wait_until_a_lock_is_awaited()
    void_waiting.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert outcome == {"void": "void"}
    assert Payment.objects.get(pk=created[0]).expires_at <= timezone.now()
    assert _queued_reconciles() == created
