"""Deliveries lose their lease (`lease_token`, `lease_expires_at`, its check constraint and index), the sweeper's due
index and `job_id`: a delivery's job is locked by the delivery id and dead workers' jobs are retried by
procrastinate's stalled-job detection (docs/adr/0012). Waiting delivery jobs get that lock; the retired sweeper's
waiting job is cancelled. No row data is lost (the dropped columns described a lease and a job, not the delivery).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0004_inbound_notifications_moved"),
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [
        # Jobs deferred before this change: waiting ones take the row id as their lock (replay/redelivery find
        # them by it); the sweeper's periodic job no longer exists.
        migrations.RunSQL(
            "UPDATE procrastinate_jobs SET lock = args->>'delivery_id' "
            "WHERE task_name = 'webhooks.deliver_webhook' AND status = 'todo' AND lock IS NULL AND args ? 'delivery_id'",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE task_name = 'webhooks.sweep_deliveries' AND status = 'todo'",
            migrations.RunSQL.noop,
        ),
        migrations.RemoveConstraint(
            model_name="delivery",
            name="sending_delivery_has_lease",
        ),
        migrations.RemoveIndex(
            model_name="delivery",
            name="whd_due_idx",
        ),
        migrations.RemoveIndex(
            model_name="delivery",
            name="whd_lease_idx",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="job_id",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="lease_expires_at",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="lease_token",
        ),
    ]
