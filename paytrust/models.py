"""Abstract model bases shared by every app."""

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Mode(models.TextChoices):
    TEST = "test", "Test"
    LIVE = "live", "Live"


class DailyRollup(models.Model):
    """The key of a daily report rollup (docs/adr/0040: invoices.CollectedDay/CollectedDayTax, payments.RefundDay):
    merchant, mode, UTC day, currency, gateway and `slot` (concurrent writers of one day spread over a few rows;
    readers sum the slots). Each rollup adds its sums and its unique constraint over these fields."""

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    day = models.DateField()
    currency = models.CharField(max_length=3)
    gateway = models.CharField(max_length=20)
    slot = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True
