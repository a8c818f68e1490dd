"""Writes for merchants (the tenant): validation and the row. Merchants is the lowest app and imports no other:
the callers above (gateways.services.merchant_onboard / merchant_settings_update) record the audit rows in the
same transaction."""

from __future__ import annotations

from django.db import transaction

from merchants.models import Merchant
from paytrust.errors import ValidationError

# Creditor profile (ISO 20022 exports) and settings an operator may change.
PROFILE_FIELDS = ("legal_name", "country", "account_iban", "account_number", "bank_bic", "bank_name")
UPDATABLE_FIELDS = ("name", "is_active", "rate_limit_per_minute", *PROFILE_FIELDS)


def merchant_clean_fields(fields: dict) -> dict:
    """Validate and normalise merchant fields (also used by the admin form); raises ValidationError."""
    cleaned = dict(fields)
    if "name" in cleaned:
        name = (cleaned["name"] or "").strip()
        if not name or len(name) > 140:
            raise ValidationError("name must be 1–140 characters.", param="name")
        cleaned["name"] = name
    rate = cleaned.get("rate_limit_per_minute")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 1):
        raise ValidationError(
            "rate_limit_per_minute must be a positive integer.", param="rate_limit_per_minute"
        )
    if cleaned.get("country"):
        country = cleaned["country"].strip().upper()
        if len(country) != 2 or not country.isalpha():
            raise ValidationError("country must be an ISO 3166 alpha-2 code.", param="country")
        cleaned["country"] = country
    for field in ("account_iban", "bank_bic"):
        if cleaned.get(field):
            cleaned[field] = cleaned[field].replace(" ", "").upper()
    return cleaned


def merchant_create(*, name: str, rate_limit_per_minute: int | None = None, **profile) -> Merchant:
    """Create a merchant row. `profile`: creditor profile fields. Onboarding a merchant that can take payments
    (with its test-mode sandbox gateway account) is `gateways.services.merchant_onboard`, which calls this."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown merchant field {sorted(unknown)[0]!r}.", param=sorted(unknown)[0])
    fields = merchant_clean_fields({"name": name, "rate_limit_per_minute": rate_limit_per_minute, **profile})
    with transaction.atomic():
        merchant = Merchant.objects.create(**fields)
    return merchant


def merchant_update(*, merchant: Merchant, **changes) -> tuple[Merchant, list[str]]:
    """Change a merchant's settings or creditor profile under a row lock; returns the merchant and the names of the
    fields that really changed (the caller audits them in its transaction)."""
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown merchant field {sorted(unknown)[0]!r}.", param=sorted(unknown)[0])
    changes = merchant_clean_fields(changes)
    with transaction.atomic():
        merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
        changed = {field: value for field, value in changes.items() if getattr(merchant, field) != value}
        if changed:
            for field, value in changed.items():
                setattr(merchant, field, value)
            merchant.save(update_fields=[*changed, "updated_at"])
    return merchant, sorted(changed)
