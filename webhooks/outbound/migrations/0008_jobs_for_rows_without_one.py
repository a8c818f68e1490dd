"""Every delivery still to send gets its delivery job (found by review). Before this change the delivery sweeper
re-queued deliveries whose job was lost or whose worker died mid-request (`sending` with an expired lease); with
the sweeper gone (0005), such a row would wait forever and a `sending` one would hold one of its endpoint's
in-flight slots for good. Each `pending` or `sending` delivery without a waiting or running job (lock = its id)
gets one, due at its `next_attempt_at` or now; the job treats `sending` as an interrupted attempt. Idempotent.
"""

from django.db import migrations

SQL = """
INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, scheduled_at)
SELECT 'outbound_webhooks', 'webhooks.deliver_webhook', d.id, jsonb_build_object('delivery_id', d.id), 'todo',
       CASE WHEN d.next_attempt_at > now() THEN d.next_attempt_at END
FROM webhooks_delivery d
WHERE d.status IN ('pending', 'sending')
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_jobs j WHERE j.lock = d.id AND j.status IN ('todo', 'doing')
  )
"""


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0007_back_office_permissions"),
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
