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

# --- Inbound gateway webhooks (webhooks/inbound.py) ---------------------------------------------------------

INBOUND_QUEUE = "inbound_webhooks"


@app.task(name="webhooks.process_inbound_event", queue=INBOUND_QUEUE)
def process_inbound_event(*, event_id: str) -> None:
    """One processing attempt of an inbound gateway webhook, if due (idempotent; the row says what to do)."""
    from webhooks.inbound.services import inbound_event_process

    close_old_connections()
    try:
        inbound_event_process(event_id=event_id)
    finally:
        close_old_connections()


@app.periodic(
    cron=settings.INBOUND_WEBHOOK_SWEEP_CRON,
    periodic_id="webhooks.sweep_inbound_events",
)
@app.task(name="webhooks.sweep_inbound_events", queue=INBOUND_QUEUE)
def sweep_inbound_events(timestamp: int) -> None:
    """Every minute: re-queue inbound events due without a live job, and reclaim those whose worker died."""
    from webhooks.inbound.services import inbound_events_sweep

    close_old_connections()
    try:
        inbound_events_sweep()
    finally:
        close_old_connections()
