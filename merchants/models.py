from django.db import models

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import TimeStampedModel


class Merchant(TimeStampedModel):
    """The tenant. Every merchant-owned row carries a FK to it (and a mode)."""

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("mer"), editable=False
    )
    name = models.CharField(max_length=140)
    is_active = models.BooleanField(default=True)
    # Requests per rolling minute per API key; null = settings.DEFAULT_RATE_LIMIT_PER_MINUTE.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)

    # Creditor profile used by ISO 20022 exports (pain.001 creditor = the merchant).
    legal_name = models.CharField(max_length=140, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2, e.g. ID")
    account_iban = models.CharField(max_length=34, blank=True)
    account_number = models.CharField(max_length=34, blank=True, help_text="Non-IBAN account number")
    bank_bic = models.CharField(max_length=11, blank=True)
    bank_name = models.CharField(max_length=140, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"
