"""Background jobs of this app (procrastinate autodiscovers tasks.py).

Outbound deliveries: one job per delivery attempt on the `outbound_webhooks` queue. Jobs are only triggers —
the `Delivery` row says what is due — so a duplicate job is a no-op and a lost job is re-deferred by the sweeper.
"""

from __future__ import annotations

from django.conf import settings
from django.db import close_old_connections

from paytrust.jobs import app, defer_in_transaction

__all__ = [
    "defer_in_transaction"
]  # re-exported: webhooks.outbound.services/outbound/inbound import it from here

OUTBOUND_QUEUE = "outbound_webhooks"


@app.task(name="webhooks.deliver_webhook", queue=OUTBOUND_QUEUE)
def deliver_webhook(*, delivery_id: str) -> None:
    """Make one attempt of an outbound delivery if it is due (idempotent)."""
    from webhooks.outbound.delivery import delivery_attempt

    close_old_connections()
    try:
        delivery_attempt(delivery_id=delivery_id)
    finally:
        close_old_connections()


@app.periodic(cron=settings.OUTBOUND_WEBHOOK_SWEEP_CRON, periodic_id="webhooks.sweep_deliveries")
@app.task(name="webhooks.sweep_deliveries", queue=OUTBOUND_QUEUE)
def sweep_deliveries(timestamp: int) -> None:
    """Every minute (OUTBOUND_WEBHOOK_SWEEP_CRON): re-defer deliveries that are due without a live job, or stuck `sending` past their lease."""
    from webhooks.outbound.delivery import deliveries_sweep

    close_old_connections()
    try:
        deliveries_sweep()
    finally:
        close_old_connections()
