from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys import tasks
from apikeys.models import AuditLog, IdempotencyRecord
from paytrust.jobs import app


def test_housekeeping_jobs_are_periodic():
    app.perform_import_paths()
    scheduled = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert scheduled["apikeys.purge_audit_log"] == "17 3 * * *"
    assert "apikeys.purge_idempotency_records" in scheduled
    assert "apikeys.purge_rate_limit_windows" in scheduled


@pytest.mark.django_db(transaction=True)
def test_purge_jobs_delete_past_retention(merchant, settings):
    old_row = AuditLog.objects.create(action=AuditLog.Action.AUTH_FAILED, actor="anonymous")
    AuditLog.objects.filter(pk=old_row.pk).update(
        created_at=timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS + 1)
    )
    at = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS + 1)
    IdempotencyRecord.objects.create(
        merchant=merchant,
        mode="test",
        key="k",
        fingerprint="f",
        method="POST",
        path="/",
        created_at=at,
        locked_at=at,
    )
    tasks.purge_audit_log(timestamp=0)
    tasks.purge_idempotency_records(timestamp=0)
    tasks.purge_rate_limit_windows(timestamp=0)
    assert not AuditLog.objects.filter(pk=old_row.pk).exists()
    assert not IdempotencyRecord.objects.exists()
