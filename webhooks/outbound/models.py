"""Outbound webhooks (PayTrust -> merchant): endpoints, events, deliveries and their attempts.

It knows nothing of invoices or payments: the layers above record events through `services.event_record`.
The app keeps the label `webhooks` (and its tables and migration history); inbound gateway notifications are
the `inbound` app (webhooks/inbound/).
Each delivery is sent by one procrastinate job whose lock is the delivery id; the delivery row records its state
and every attempt (docs/adr/0012-outbound-webhook-delivery.md).
"""

from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import Mode, TimeStampedModel


class EventType(models.TextChoices):
    """Every outbound event type (SPEC §8). `event_record` refuses anything else."""

    INVOICE_CREATED = "invoice.created"
    INVOICE_PENDING = "invoice.pending"
    INVOICE_PARTIALLY_PAID = "invoice.partially_paid"
    INVOICE_PAID = "invoice.paid"
    INVOICE_EXPIRED = "invoice.expired"
    INVOICE_VOIDED = "invoice.voided"
    INSTALLMENT_PAID = "installment.paid"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    # Authorize and capture (docs/adr/0047): held; the hold voided; the hold lapsed uncaptured.
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_CANCELED = "payment.canceled"
    PAYMENT_EXPIRED = "payment.expired"
    # Money arrived on a void or expired invoice: recorded, flagged for finance staff, to be refunded.
    PAYMENT_RECEIVED_ON_CLOSED_INVOICE = "payment.received_on_closed_invoice"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    # Risk (issue 15): a payment refused before any gateway call (score >= the block threshold).
    PAYMENT_BLOCKED = "payment.blocked"
    # Reconciliation (issue 15): a gateway account's day compared with the gateway's records.
    RECONCILIATION_COMPLETED = "reconciliation.completed"


ALL_EVENTS = "*"


class WebhookEndpoint(TimeStampedModel):
    """A merchant's URL that receives outbound events. Soft-deleted so its delivery history stays readable."""

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("whe"), editable=False
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=500, blank=True, default="")
    # Event types this endpoint receives, or ["*"] for all of them.
    enabled_events = ArrayField(models.CharField(max_length=64), default=list)
    enabled = models.BooleanField(default=True)
    # Why the endpoint was switched off automatically ("gone": it answered 410), empty otherwise.
    disabled_reason = models.CharField(max_length=32, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # `whsec_…` signing secrets, Fernet-encrypted. During a rotation window the previous one still signs.
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["merchant", "mode", "enabled"], name="whe_tenant_enabled_idx")]
        verbose_name = "merchant webhook endpoint"
        # Back-office actions (reporting/roles.py grants them; docs/adr/0042).
        permissions = [("manage_webhookendpoint", "Can enable and disable merchant webhook endpoints")]

    def __str__(self) -> str:
        return f"{self.url} ({self.id})"


class Event(TimeStampedModel):
    """Something that happened to a merchant's object, written in the transaction of that change."""

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("evt"), editable=False
    )
    # Indexed by evt_tenant_created_idx (merchant first): no separate index, which every event insert would pay.
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="events", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    type = models.CharField(max_length=64, choices=EventType.choices)
    # Snapshot of the object as it was when the event happened.
    data = models.JSONField(encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outbound merchant event"
        permissions = [("redeliver_event", "Can redeliver outbound events and deliveries")]
        indexes = [
            models.Index(fields=["merchant", "mode", "-created_at", "-id"], name="evt_tenant_created_idx"),
            models.Index(
                fields=["merchant", "mode", "type", "-created_at", "-id"], name="evt_tenant_type_created_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.id})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its next attempt at `next_attempt_at`
    SENDING = "sending"  # a request is in flight (or its worker died and the job is about to be retried)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retries exhausted (or a permanent refusal); redeliverable
    CANCELLED = "cancelled"  # endpoint disabled or deleted before it was sent; redeliverable


class Delivery(TimeStampedModel):
    """One event to one endpoint. At most one per (event, endpoint); retries are attempts of the same delivery."""

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("whd"), editable=False
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)  # all attempts ever
    cycle_attempts = models.PositiveIntegerField(
        default=0
    )  # attempts since the last (re)queue: picks the delay
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outbound delivery"
        verbose_name_plural = "outbound deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_event_endpoint"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "status"], name="whd_endpoint_status_idx"),
            models.Index(fields=["status", "-created_at"], name="whd_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery, kept whatever its outcome."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    response_excerpt = models.TextField(
        blank=True, default=""
    )  # first OUTBOUND_WEBHOOK_RESPONSE_EXCERPT_BYTES

    class Meta:
        ordering = ["-attempted_at", "-id"]
        indexes = [models.Index(fields=["delivery", "-attempted_at"], name="whda_delivery_idx")]

    def __str__(self) -> str:
        return (
            f"{self.delivery_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S} ({self.status_code or self.error})"
        )
