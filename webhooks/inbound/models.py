"""Inbound gateway notifications (gateway -> PayTrust, `whk_…`): each stored verbatim before it is acknowledged,
then processed by calling payments (webhooks/inbound/services.py). See docs/adr/0031-inbound-gateway-webhooks.md.
"""

from django.db import models

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import Mode, TimeStampedModel


class InboundStatus(models.TextChoices):
    RECEIVED = "received"  # stored and acknowledged; processing due at `next_attempt_at`
    PROCESSING = "processing"  # an attempt is running (or its worker died and the job is about to be retried)
    PROCESSED = "processed"
    FAILED = "failed"  # retries exhausted, or a permanent error; replayable


class InboundNotification(TimeStampedModel):
    """One inbound gateway notification, stored verbatim (raw body, redacted headers) before it is acknowledged.

    Processed by one procrastinate job whose lock is the row id (docs/adr/0031-inbound-gateway-webhooks.md); the
    row records the state and every attempt. (account, gateway event id) is unique: a redelivery is a no-op.
    """

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("whk"), editable=False
    )
    gateway_account = models.ForeignKey(
        "gateways.GatewayAccount", on_delete=models.PROTECT, related_name="inbound_notifications"
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="inbound_notifications"
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    gateway = models.CharField(max_length=20)
    # The gateway's own event id, or one derived from reference + status + status time (gateways adapters).
    gateway_event_id = models.CharField(max_length=160)
    # What the notification says (parsed at receipt, for filters and the admin; processing re-parses the body).
    payment_reference = models.CharField(max_length=128, blank=True, default="")  # our pay_ id as sent
    gateway_reference = models.CharField(max_length=128, blank=True, default="")
    notification_status = models.CharField(max_length=24, blank=True, default="")
    amount_minor = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    occurred_at = models.DateTimeField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)  # lower-cased names, secrets redacted
    body = models.BinaryField()  # the raw body, byte for byte
    # Set by processing when the notification names one of this account's payments.
    payment = models.ForeignKey(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inbound_notifications",
    )

    status = models.CharField(max_length=12, choices=InboundStatus.choices, default=InboundStatus.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)  # attempts in the current cycle (reset by a replay)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # when `received`: when its job runs
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True, default="")
    outcome = models.CharField(max_length=300, blank=True, default="")  # what processing did

    class Meta:
        db_table = "inbound_notification"
        ordering = ["-created_at", "-id"]
        verbose_name = "inbound gateway notification"
        # Back-office actions (reporting/roles.py grants them; docs/adr/0042).
        permissions = [("replay_inboundnotification", "Can replay inbound gateway notifications")]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway_account", "gateway_event_id"], name="whk_unique_gateway_event"
            ),
        ]
        indexes = [
            models.Index(
                fields=["merchant", "mode", "status", "-created_at", "-id"], name="whk_tenant_status_idx"
            ),
            models.Index(fields=["status", "-created_at", "-id"], name="whk_status_created_idx"),
            models.Index(fields=["payment_reference"], name="whk_payment_reference_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.gateway_event_id} ({self.status})"


class InboundNotificationAttempt(models.Model):
    """One processing attempt of an inbound notification: when, and the error if it failed. Append-only."""

    notification = models.ForeignKey(
        InboundNotification, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()  # 1, 2, … over the event's whole life (replays continue the count)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)  # null: running, or the worker died
    succeeded = models.BooleanField(null=True)
    error = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        db_table = "inbound_notification_attempt"
        ordering = ["notification", "number"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "number"], name="whk_attempt_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} #{self.number}"
