"""Background jobs of this app (procrastinate autodiscovers tasks.py; the worker schedules the periodic ones)."""

from __future__ import annotations

import logging

from django.db import close_old_connections

from paytrust.jobs import app

logger = logging.getLogger("paytrust.reporting.tasks")
HOUSEKEEPING_QUEUE = "housekeeping"


@app.periodic(cron="41 2 * * *", periodic_id="reporting.verify_ledger")
@app.task(name="reporting.verify_ledger", queue=HOUSEKEEPING_QUEUE)
def verify_ledger(timestamp: int) -> None:
    """Daily: every ledger invariant over the whole ledger (what `manage.py verify_ledger` checks), recorded as a
    LedgerCheck (back office; `/metrics` gauges paytrust_ledger_breaks and paytrust_ledger_check_timestamp_seconds).
    Running it twice records two checks and changes nothing else."""
    from reporting.services import ledger_check_run

    close_old_connections()
    try:
        check = ledger_check_run()
        log = logger.info if check.ok else logger.error
        log("ledger checked", extra={"ok": check.ok, "breaks": check.breaks_count, **check.summary})
    finally:
        close_old_connections()
