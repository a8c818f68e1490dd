"""Periodic housekeeping of the risk app (procrastinate autodiscovers tasks.py; the worker schedules it)."""

from __future__ import annotations

import logging

from django.db import close_old_connections

from paytrust.jobs import app
from risk.services import risk_velocity_purge

logger = logging.getLogger("paytrust.risk")


@app.periodic(cron="*/15 * * * *", periodic_id="risk.purge_velocity")
@app.task(name="risk.purge_velocity", queue="housekeeping")
def purge_velocity(timestamp: int) -> None:
    """Every 15 minutes: delete PostgreSQL velocity rows older than a day (the longest window). Idempotent."""
    close_old_connections()
    try:
        logger.info("purged risk velocity rows", extra={"deleted": risk_velocity_purge()})
    finally:
        close_old_connections()
