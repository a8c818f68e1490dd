"""Every notification still to process gets its processing job (found by review). Before this change the inbound
sweeper re-queued notifications whose job was lost or whose worker died (their old jobs had no retry); with the
sweeper gone (0002), such a row would wait forever. Each `received` or `processing` notification without a waiting
or running job (lock = its id) gets one, due at its `next_attempt_at` or now; the job treats `processing` as an
interrupted attempt. Idempotent: rows that have a job are left alone.
"""

from django.db import migrations

SQL = """
INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, scheduled_at)
SELECT 'inbound_webhooks', 'webhooks.process_inbound_event', n.id, jsonb_build_object('event_id', n.id), 'todo',
       CASE WHEN n.next_attempt_at > now() THEN n.next_attempt_at END
FROM inbound_notification n
WHERE n.status IN ('received', 'processing')
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_jobs j WHERE j.lock = n.id AND j.status IN ('todo', 'doing')
  )
"""


class Migration(migrations.Migration):
    dependencies = [
        ("inbound", "0003_back_office_permissions"),
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
