"""The inbound models leave this app's state; their tables now belong to the `inbound` app (its 0001 renames them)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_lean_hot_path_indexes"),
        ("inbound", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="webhookeventattempt", name="event"),
                migrations.DeleteModel(name="WebhookEvent"),
                migrations.DeleteModel(name="WebhookEventAttempt"),
            ],
        ),
    ]
