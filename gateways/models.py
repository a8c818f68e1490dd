from django.contrib.postgres.fields import ArrayField
from django.db import models

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import Mode, TimeStampedModel


class GatewayName(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    XENDIT = "xendit", "Xendit"
    MIDTRANS = "midtrans", "Midtrans"
    STRIPE = "stripe", "Stripe"
    PAYPAL = "paypal", "PayPal"
    MANUAL = "manual", "Manual bank transfer"


class GatewayAccount(TimeStampedModel):
    """A merchant's account with one payment gateway in one mode. Credentials are encrypted at rest."""

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("gwa"), editable=False
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="gateway_accounts"
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    gateway = models.CharField(max_length=20, choices=GatewayName.choices)
    credentials_encrypted = models.TextField(blank=True, default="")
    currencies = ArrayField(models.CharField(max_length=3), default=list)
    enabled = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Non-secret hint shown instead of the credentials: {"secret_key": "…1a2b", …} (last 4 characters at most).
    credentials_hint = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one enabled account per gateway name, so "gateway": "xendit" on an invoice is unambiguous.
            models.UniqueConstraint(
                fields=["merchant", "mode", "gateway"],
                condition=models.Q(enabled=True),
                name="one_enabled_account_per_gateway",
            )
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.mode} ({self.id})"

    @property
    def credentials_set(self) -> bool:
        return bool(self.credentials_encrypted)


class GatewayFee(models.Model):
    """Service fee for one currency on one gateway account: round(subtotal × percent) + fixed."""

    account = models.ForeignKey(GatewayAccount, on_delete=models.CASCADE, related_name="fees")
    currency = models.CharField(max_length=3)
    percent = models.DecimalField(max_digits=6, decimal_places=4, default=0)
    fixed_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="one_fee_per_currency"),
            models.CheckConstraint(
                condition=models.Q(percent__gte=0, percent__lte=1, fixed_minor__gte=0),
                name="fee_non_negative",
            ),
        ]


class SandboxCheckoutStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    AUTHORIZED = "authorized", "Authorized"  # a manual-capture session: held, to be captured or voided
    CANCELED = "canceled", "Canceled"  # an authorization voided (or lapsed) before capture


class SandboxCheckoutSession(TimeStampedModel):
    """The sandbox gateway's own record of one payment: what its hosted checkout page shows and what happened.

    It plays the part of the remote gateway's database (the sandbox is a gateway implemented inside PayTrust);
    PayTrust's payments app keeps its own Payment row and learns outcomes only through the signed webhook.
    """

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("ckt"), editable=False
    )
    account = models.ForeignKey(GatewayAccount, on_delete=models.PROTECT, related_name="sandbox_sessions")
    payment_id = models.CharField(max_length=64, help_text="Our pay_ id (the gateway's external id).")
    # Bearer token in the checkout URL (unguessable, 256 bits) and the token-bound form nonce (see webhooks/inbound/sandbox_checkout.py).
    token = models.CharField(max_length=64, unique=True)
    form_nonce = models.CharField(max_length=64)
    merchant_name = models.CharField(max_length=140)
    invoice_id = models.CharField(max_length=64, blank=True)
    installment_number = models.PositiveSmallIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    customer = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField()
    success_redirect_url = models.CharField(max_length=2000, blank=True)
    failure_redirect_url = models.CharField(max_length=2000, blank=True)
    # "manual": the checkout only authorizes (action `authorize`); `sandbox_capture` / `sandbox_void` end the hold.
    capture_method = models.CharField(max_length=10, default="automatic")

    status = models.CharField(
        max_length=10, choices=SandboxCheckoutStatus.choices, default=SandboxCheckoutStatus.OPEN
    )
    action = models.CharField(max_length=20, blank=True, help_text="The checkout action that closed it.")
    amount_paid_minor = models.BigIntegerField(default=0)
    amount_refunded_minor = models.BigIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Authorize and capture: the amount held, when, and until when it may be captured (the sandbox's own limit).
    amount_authorized_minor = models.BigIntegerField(default=0)
    authorized_at = models.DateTimeField(null=True, blank=True)
    capture_before = models.DateTimeField(null=True, blank=True)
    # The webhook the sandbox "sent" for the outcome: kept so a resubmitted form re-delivers the same event.
    webhook_event_id = models.CharField(max_length=64, blank=True)
    webhook_body = models.TextField(blank=True)
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)
    webhook_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # create_payment is idempotent per payment id: a retry returns the same session.
            models.UniqueConstraint(fields=["account", "payment_id"], name="one_sandbox_session_per_payment"),
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0, amount_paid_minor__gte=0, amount_refunded_minor__gte=0)
                & models.Q(amount_refunded_minor__lte=models.F("amount_paid_minor")),
                name="sandbox_session_amounts_valid",
            ),
            # Authorize and capture: a capture collects at most what was held.
            models.CheckConstraint(
                condition=models.Q(amount_authorized_minor__gte=0)
                & (
                    models.Q(amount_authorized_minor=0)
                    | models.Q(amount_paid_minor__lte=models.F("amount_authorized_minor"))
                ),
                name="sandbox_session_capture_within_hold",
            ),
        ]

    def __str__(self) -> str:
        return f"sandbox checkout {self.id} ({self.payment_id}, {self.status})"


class SandboxRefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SandboxRefund(models.Model):
    """A refund the sandbox gateway accepted; unique per (session, refund id) so a retried refund is a no-op.

    Its outcome follows the amount's last two minor-unit digits (gateways/sandbox/refunds.py): 13 fails
    ("insufficient balance"), 42 stays pending until completed or failed from the checkout page; any other succeeds.
    The session's `amount_refunded_minor` counts the succeeded ones."""

    session = models.ForeignKey(SandboxCheckoutSession, on_delete=models.CASCADE, related_name="refunds")
    refund_id = models.CharField(max_length=64, help_text="Our ref_ id (the refund's idempotency key).")
    amount_minor = models.BigIntegerField()
    status = models.CharField(
        max_length=10, choices=SandboxRefundStatus.choices, default=SandboxRefundStatus.SUCCEEDED
    )
    failure_message = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "refund_id"], name="one_sandbox_refund_per_id"),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="sandbox_refund_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "succeeded", "failed"]),
                name="sandbox_refund_status_valid",
            ),
        ]


class SandboxSettlementAdjustmentKind(models.TextChoices):
    """A discrepancy injected into the sandbox's settlement export for a day (the reconciliation demo)."""

    UNKNOWN_PAYMENT = "unknown_payment", "A settled payment PayTrust never heard of"
    ALTER_AMOUNT = "alter_amount", "A payment settled for another amount"
    DROP = "drop", "A payment left out of the settlement"


class SandboxSettlementAdjustment(models.Model):
    """What the sandbox gateway's settlement export for `day` shows differently from its own checkout rows
    (gateways/sandbox/settlement.py). One per (account, day, kind, payment id): injecting again changes nothing."""

    account = models.ForeignKey(GatewayAccount, on_delete=models.CASCADE, related_name="sandbox_adjustments")
    day = models.DateField()
    kind = models.CharField(max_length=20, choices=SandboxSettlementAdjustmentKind.choices)
    # UNKNOWN_PAYMENT: the foreign payment id the line echoes; ALTER_AMOUNT / DROP: our pay_ id of a settled session.
    payment_id = models.CharField(max_length=64)
    amount_minor = models.BigIntegerField(
        null=True, blank=True
    )  # UNKNOWN_PAYMENT / ALTER_AMOUNT: the amount shown
    currency = models.CharField(max_length=3, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["day", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "kind", "payment_id"], name="one_sandbox_adjustment_per_payment"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_minor__isnull=True) | models.Q(amount_minor__gt=0),
                name="sandbox_adjustment_amount_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.payment_id} on {self.day}"
