"""Background jobs of this app (procrastinate autodiscovers tasks.py; the worker schedules the periodic ones)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import close_old_connections

from paytrust.jobs import app
from reconciliation.services import reconcile_api_accounts

logger = logging.getLogger("paytrust.reconciliation")
RECONCILIATION_QUEUE = "housekeeping"


@app.periodic(cron="17 3 * * *", periodic_id="reconciliation.reconcile_yesterday")
@app.task(
    name="reconciliation.reconcile_yesterday",
    queue=RECONCILIATION_QUEUE,
    queueing_lock="reconciliation.reconcile_yesterday",
)
def reconcile_yesterday(timestamp: int) -> dict:
    """Daily at 03:17 UTC: the previous UTC day of every account whose gateway lists what it settled (sandbox,
    Xendit). One account failing does not stop the others (its run is recorded `failed`); running it twice gives
    the same runs (a re-run replaces a day's lines and posts nothing twice). Returns the counts (for the log)."""
    day = (datetime.fromtimestamp(timestamp, tz=UTC) - timedelta(days=1)).date()
    close_old_connections()
    try:
        done = reconcile_api_accounts(day=day, started_by="job")
        log = logger.error if done["failed"] else logger.info
        log("reconciliation of yesterday done", extra={"day": day.isoformat(), **done})
        return done
    finally:
        close_old_connections()
