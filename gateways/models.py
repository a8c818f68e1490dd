from django.contrib.postgres.fields import ArrayField
from django.db import models

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import Mode, TimeStampedModel


class GatewayName(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    XENDIT = "xendit", "Xendit"
    MIDTRANS = "midtrans", "Midtrans"


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
