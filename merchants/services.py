"""Writes for merchants (the tenant)."""

from __future__ import annotations

from django.db import transaction

from gateways.services import gateway_account_ensure_sandbox
from merchants.models import Merchant
from paytrust.errors import ValidationError


def merchant_create(*, name: str, rate_limit_per_minute: int | None = None) -> Merchant:
    name = (name or "").strip()
    if not name or len(name) > 140:
        raise ValidationError("name must be 1–140 characters.", param="name")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise ValidationError(
            "rate_limit_per_minute must be a positive integer.", param="rate_limit_per_minute"
        )
    with transaction.atomic():
        merchant = Merchant.objects.create(name=name, rate_limit_per_minute=rate_limit_per_minute)
        gateway_account_ensure_sandbox(merchant=merchant)
    return merchant
