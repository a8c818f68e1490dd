"""Background jobs of this app (procrastinate autodiscovers tasks.py). They call payments.services; the services
never import this module (a job is deferred by its task name, see payments.services.voiding)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import close_old_connections

from payments.services import (
    invoices_expire_overdue,
    payment_reconcile,
    payments_reconcile,
    refunds_reconcile,
)
from paytrust.jobs import app

logger = logging.getLogger("paytrust.payments")

PAYMENTS_QUEUE = "payments"


@app.periodic(cron=settings.PAYMENT_RECONCILE_CRON, periodic_id="payments.reconcile_payments")
@app.task(name="payments.reconcile_payments", queue=PAYMENTS_QUEUE)
def reconcile_payments(timestamp: int) -> None:
    """Every minute: ask the gateways about `unknown` payments, `initiating` ones older than a minute and
    `pending` ones past their expiry, and apply their answer (payments.services.payments_reconcile); then the
    refunds pending longer than REFUND_RECONCILE_AFTER_SECONDS (payments.services.refunds_reconcile)."""
    close_old_connections()
    try:
        summary = payments_reconcile()
        if summary.checked:
            logger.info("payments reconciled", extra=vars(summary))
        refunds = refunds_reconcile()
        if refunds.checked:
            logger.info("refunds reconciled", extra=vars(refunds))
    finally:
        close_old_connections()


@app.task(name="payments.reconcile_payment", queue=PAYMENTS_QUEUE)
def reconcile_payment(payment_id: str) -> None:
    """Ask the gateway about one payment now and apply its answer (payments.services.payment_reconcile); deferred
    when its invoice is voided. If it fails, the periodic `reconcile_payments` finds the payment later."""
    close_old_connections()
    try:
        payment_reconcile(payment_id=payment_id)
    finally:
        close_old_connections()


# The task keeps the name (and default queue) it had when it lived in invoices/tasks.py: jobs and periodic
# defers already in the database stay valid.
@app.periodic(cron="* * * * *")
@app.task(name="invoices.expire_overdue", queueing_lock="invoices.expire_overdue", pass_context=False)
def expire_overdue_invoices(timestamp: int) -> int:
    """Every minute: move open invoices past their lapse time to `expired` (records `invoice.expired` with the
    invoice's payments; payments.services.invoices_expire_overdue). Idempotent; the queueing lock keeps at most
    one run waiting."""
    count = invoices_expire_overdue()
    if count:
        logger.info("expired overdue invoices", extra={"count": count})
    return count
