"""Periodic housekeeping of this app (procrastinate autodiscovers tasks.py; the worker schedules them)."""

from __future__ import annotations

import logging

from django.db import close_old_connections

from paytrust.jobs import app

logger = logging.getLogger("paytrust.apikeys.tasks")
HOUSEKEEPING_QUEUE = "housekeeping"


@app.periodic(cron="17 3 * * *", periodic_id="apikeys.purge_audit_log")
@app.task(name="apikeys.purge_audit_log", queue=HOUSEKEEPING_QUEUE)
def purge_audit_log(timestamp: int) -> None:
    """Daily: delete audit rows older than settings.AUDIT_RETENTION_DAYS."""
    from apikeys.services import audit_log_purge

    close_old_connections()
    try:
        logger.info("purged audit log", extra={"deleted": audit_log_purge()})
    finally:
        close_old_connections()


@app.periodic(cron="*/10 * * * *", periodic_id="apikeys.purge_idempotency_records")
@app.task(name="apikeys.purge_idempotency_records", queue=HOUSEKEEPING_QUEUE)
def purge_idempotency_records(timestamp: int) -> None:
    """Every 10 minutes: delete idempotency records older than settings.IDEMPOTENCY_RETENTION_HOURS."""
    from apikeys.idempotency import idempotency_purge

    close_old_connections()
    try:
        logger.info("purged idempotency records", extra={"deleted": idempotency_purge()})
    finally:
        close_old_connections()


@app.periodic(cron="* * * * *", periodic_id="apikeys.purge_rate_limit_windows")
@app.task(name="apikeys.purge_rate_limit_windows", queue=HOUSEKEEPING_QUEUE)
def purge_rate_limit_windows(timestamp: int) -> None:
    """Every minute: delete rate-limit hits that left the window (PostgreSQL backend)."""
    from apikeys.ratelimit import rate_limit_purge

    close_old_connections()
    try:
        logger.info("purged rate-limit windows", extra={"deleted": rate_limit_purge()})
    finally:
        close_old_connections()
