"""Background jobs of this app (procrastinate autodiscovers tasks.py)."""

from __future__ import annotations

import logging

from invoices.services import invoice_expire_overdue
from paytrust.jobs import app

logger = logging.getLogger("paytrust.invoices")


@app.periodic(cron="* * * * *")
@app.task(name="invoices.expire_overdue", queueing_lock="invoices.expire_overdue", pass_context=False)
def expire_overdue_invoices(timestamp: int) -> int:
    """Every minute: move open invoices past their lapse time to `expired` (records `invoice.expired`).
    Idempotent; the queueing lock keeps at most one run waiting."""
    count = invoice_expire_overdue()
    if count:
        logger.info("expired overdue invoices", extra={"count": count})
    return count
