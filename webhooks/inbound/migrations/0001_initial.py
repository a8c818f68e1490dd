"""Inbound gateway notifications move from the `webhooks` app to their own `inbound` app (webhooks/inbound/).

No data moves: the two tables are renamed (`webhooks_webhookevent` -> `inbound_notification`,
`webhooks_webhookeventattempt` -> `inbound_notification_attempt`, column `event_id` -> `notification_id`), the
models are created in this app's state only (webhooks 0004 removes them from that app's state), and the content
types and permissions follow them so admin history and granted permissions are kept.
"""

import functools

import django.db.models.deletion
from django.db import migrations, models

import paytrust.ids

RENAMES = [
    ("webhooks", "webhookevent", "inbound", "inboundnotification", "inbound notification"),
    (
        "webhooks",
        "webhookeventattempt",
        "inbound",
        "inboundnotificationattempt",
        "inbound notification attempt",
    ),
]


def _move_content_types(apps, schema_editor, *, backwards: bool = False) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for old_app, old_model, new_app, new_model, new_verbose in RENAMES:
        src, dst = (
            ((new_app, new_model), (old_app, old_model))
            if backwards
            else ((old_app, old_model), (new_app, new_model))
        )
        if ContentType.objects.filter(app_label=dst[0], model=dst[1]).exists():
            continue  # already there (post_migrate of an earlier run); leave both as they are
        content_type = ContentType.objects.filter(app_label=src[0], model=src[1]).first()
        if content_type is None:
            continue  # a fresh database: post_migrate creates them
        content_type.app_label, content_type.model = dst
        content_type.save(update_fields=["app_label", "model"])
        for permission in Permission.objects.filter(content_type=content_type):
            action = permission.codename.split("_", 1)[0]
            permission.codename = f"{action}_{dst[1]}"
            permission.name = f"Can {action} {old_model if backwards else new_verbose}"
            permission.save(update_fields=["codename", "name"])


def _backwards(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, backwards=True)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("gateways", "0003_sandbox_refund"),
        ("merchants", "0001_initial"),
        ("payments", "0002_refunds_report_index"),
        ("webhooks", "0003_lean_hot_path_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        "ALTER TABLE webhooks_webhookevent RENAME TO inbound_notification",
                        "ALTER TABLE webhooks_webhookeventattempt RENAME TO inbound_notification_attempt",
                        "ALTER TABLE inbound_notification_attempt RENAME COLUMN event_id TO notification_id",
                    ],
                    reverse_sql=[
                        "ALTER TABLE inbound_notification_attempt RENAME COLUMN notification_id TO event_id",
                        "ALTER TABLE inbound_notification_attempt RENAME TO webhooks_webhookeventattempt",
                        "ALTER TABLE inbound_notification RENAME TO webhooks_webhookevent",
                    ],
                ),
            ],
            state_operations=[
                migrations.CreateModel(
                    name="InboundNotification",
                    fields=[
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "id",
                            models.CharField(
                                default=functools.partial(paytrust.ids.new_id, *("whk",), **{}),
                                editable=False,
                                max_length=32,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        (
                            "mode",
                            models.CharField(choices=[("test", "Test"), ("live", "Live")], max_length=4),
                        ),
                        ("gateway", models.CharField(max_length=20)),
                        ("gateway_event_id", models.CharField(max_length=160)),
                        ("payment_reference", models.CharField(blank=True, default="", max_length=128)),
                        ("gateway_reference", models.CharField(blank=True, default="", max_length=128)),
                        ("notification_status", models.CharField(blank=True, default="", max_length=24)),
                        ("amount_minor", models.BigIntegerField(blank=True, null=True)),
                        ("currency", models.CharField(blank=True, default="", max_length=3)),
                        ("occurred_at", models.DateTimeField(blank=True, null=True)),
                        ("headers", models.JSONField(blank=True, default=dict)),
                        ("body", models.BinaryField()),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("received", "Received"),
                                    ("processing", "Processing"),
                                    ("processed", "Processed"),
                                    ("failed", "Failed"),
                                ],
                                default="received",
                                max_length=12,
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("deferred_at", models.DateTimeField(blank=True, null=True)),
                        ("lease_expires_at", models.DateTimeField(blank=True, null=True)),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.CharField(blank=True, default="", max_length=1000)),
                        ("outcome", models.CharField(blank=True, default="", max_length=300)),
                        (
                            "gateway_account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="inbound_notifications",
                                to="gateways.gatewayaccount",
                            ),
                        ),
                        (
                            "merchant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="inbound_notifications",
                                to="merchants.merchant",
                            ),
                        ),
                        (
                            "payment",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="inbound_notifications",
                                to="payments.payment",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "inbound_notification",
                        "ordering": ["-created_at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="InboundNotificationAttempt",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("number", models.PositiveIntegerField()),
                        ("started_at", models.DateTimeField()),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("succeeded", models.BooleanField(null=True)),
                        ("error", models.CharField(blank=True, default="", max_length=1000)),
                        (
                            "notification",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="attempt_log",
                                to="inbound.inboundnotification",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "inbound_notification_attempt",
                        "ordering": ["notification", "number"],
                    },
                ),
                migrations.AddIndex(
                    model_name="inboundnotification",
                    index=models.Index(
                        condition=models.Q(("status", "received")),
                        fields=["next_attempt_at"],
                        name="whk_due_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="inboundnotification",
                    index=models.Index(
                        condition=models.Q(("status", "processing")),
                        fields=["lease_expires_at"],
                        name="whk_lease_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="inboundnotification",
                    index=models.Index(
                        fields=["merchant", "mode", "status", "-created_at", "-id"],
                        name="whk_tenant_status_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="inboundnotification",
                    index=models.Index(
                        fields=["status", "-created_at", "-id"], name="whk_status_created_idx"
                    ),
                ),
                migrations.AddIndex(
                    model_name="inboundnotification",
                    index=models.Index(fields=["payment_reference"], name="whk_payment_reference_idx"),
                ),
                migrations.AddConstraint(
                    model_name="inboundnotification",
                    constraint=models.UniqueConstraint(
                        fields=("gateway_account", "gateway_event_id"), name="whk_unique_gateway_event"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="inboundnotification",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("status", "processing"), _negated=True),
                            ("lease_expires_at__isnull", False),
                            _connector="OR",
                        ),
                        name="whk_processing_has_lease",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="inboundnotificationattempt",
                    constraint=models.UniqueConstraint(
                        fields=("notification", "number"), name="whk_attempt_number_unique"
                    ),
                ),
            ],
        ),
        migrations.RunPython(_move_content_types, _backwards),
    ]
