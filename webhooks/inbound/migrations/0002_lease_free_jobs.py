"""Inbound notifications lose their lease (`lease_expires_at`, its check constraint and index) and the sweeper's
`deferred_at` and due index: a notification's job is locked by its id and dead workers' jobs are retried by
procrastinate's stalled-job detection (docs/adr/0031). Waiting processing jobs get that lock; the retired sweeper's
waiting job is cancelled. No row data is lost (the dropped columns described a lease, not the notification).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("inbound", "0001_initial"),
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [
        # Jobs deferred before this change: waiting ones take the row id as their lock (replay/redelivery find
        # them by it); the sweeper's periodic job no longer exists.
        migrations.RunSQL(
            "UPDATE procrastinate_jobs SET lock = args->>'event_id' "
            "WHERE task_name = 'webhooks.process_inbound_event' AND status = 'todo' AND lock IS NULL AND args ? 'event_id'",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE task_name = 'webhooks.sweep_inbound_events' AND status = 'todo'",
            migrations.RunSQL.noop,
        ),
        migrations.RemoveConstraint(
            model_name="inboundnotification",
            name="whk_processing_has_lease",
        ),
        migrations.RemoveIndex(
            model_name="inboundnotification",
            name="whk_due_idx",
        ),
        migrations.RemoveIndex(
            model_name="inboundnotification",
            name="whk_lease_idx",
        ),
        migrations.RemoveField(
            model_name="inboundnotification",
            name="deferred_at",
        ),
        migrations.RemoveField(
            model_name="inboundnotification",
            name="lease_expires_at",
        ),
    ]
