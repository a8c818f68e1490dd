"""Background jobs of this app (procrastinate autodiscovers tasks.py)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import close_old_connections

from paytrust.jobs import app

logger = logging.getLogger("paytrust.payments")

PAYMENTS_QUEUE = "payments"


@app.periodic(cron=settings.PAYMENT_RECONCILE_CRON, periodic_id="payments.reconcile_payments")
@app.task(name="payments.reconcile_payments", queue=PAYMENTS_QUEUE)
def reconcile_payments(timestamp: int) -> None:
    """Every minute: ask the gateways about `unknown` payments, `initiating` ones older than a minute and
    `pending` ones past their expiry, and apply their answer (payments.services.payments_reconcile)."""
    from payments.services import payments_reconcile

    close_old_connections()
    try:
        summary = payments_reconcile()
        if summary.checked:
            logger.info("payments reconciled", extra=vars(summary))
    finally:
        close_old_connections()


@app.task(name="payments.reconcile_payment", queue=PAYMENTS_QUEUE)
def reconcile_payment(payment_id: str) -> None:
    """Ask the gateway about one payment now and apply its answer (payments.services.payment_reconcile); deferred
    when its invoice is voided. If it fails, the periodic `reconcile_payments` finds the payment later."""
    from payments.services import payment_reconcile

    close_old_connections()
    try:
        payment_reconcile(payment_id=payment_id)
    finally:
        close_old_connections()
