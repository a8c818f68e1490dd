"""Writes for gateway accounts. The API, the admin and the management commands all call these."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import IntegrityError, transaction

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record
from gateways.models import GatewayAccount, GatewayFee, GatewayName
from gateways.registry import gateway_class
from merchants.models import Merchant
from merchants.services import merchant_create, merchant_update
from paytrust import crypto, money
from paytrust.errors import Conflict, ValidationError
from paytrust.models import Mode
from paytrust.money import ENABLED_CURRENCIES

logger = logging.getLogger("paytrust.gateways")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
HINT_MIN_LENGTH = 16  # shorter secrets get no hint at all (4 chars of 8 would be half the secret)


@dataclass(frozen=True)
class FeeSpec:
    currency: str
    percent: Decimal
    fixed_minor: int


def credentials_hint(credentials: dict[str, str], *, fields: Iterable[str]) -> dict[str, str]:
    """{"secret_key": "…1a2b"}: the last 4 characters of each merchant-supplied secret, nothing for short ones."""
    hint = {}
    for name in fields:
        value = credentials.get(name) or ""
        hint[name] = f"…{value[-4:]}" if len(value) >= HINT_MIN_LENGTH else "set"
    return hint


def clean_currencies(*, gateway: str, currencies: object, param: str = "currencies") -> list[str]:
    cls = gateway_class(gateway)
    if not isinstance(currencies, list | tuple) or not currencies:
        raise ValidationError("currencies must be a non-empty list of currency codes.", param=param)
    cleaned: list[str] = []
    for index, code in enumerate(currencies):
        money.get_currency(code, param=f"{param}.{index}")
        refusal = cls.currency_refusal(code)
        if refusal is not None:
            raise ValidationError(
                f"{refusal} {gateway} takes "
                f"{', '.join(sorted(cls.supported_currencies & set(ENABLED_CURRENCIES)))}.",
                code="gateway_currency_unsupported",
                param=f"{param}.{index}",
            )
        if code in cleaned:
            raise ValidationError(f"{code} is listed twice.", param=f"{param}.{index}")
        cleaned.append(code)
    return cleaned


def clean_fees(*, fees: object, currencies: list[str], param: str = "fees") -> list[FeeSpec]:
    """[{"currency", "percent" (fraction, ≤ 4 decimals), "fixed" (decimal string in that currency)}]."""
    if fees is None:
        return []
    if not isinstance(fees, list | tuple):
        raise ValidationError("fees must be a list.", param=param)
    cleaned: list[FeeSpec] = []
    for index, fee in enumerate(fees):
        where = f"{param}.{index}"
        if not isinstance(fee, dict):
            raise ValidationError("Each fee must be an object.", param=where)
        currency = fee.get("currency")
        if currency not in currencies:
            raise ValidationError(
                f"Fee currency {currency!r} is not one of this account's currencies.",
                code="fee_currency_invalid",
                param=f"{where}.currency",
            )
        if any(existing.currency == currency for existing in cleaned):
            raise ValidationError(f"Two fees for {currency}.", param=f"{where}.currency")
        percent = money.parse_rate(fee.get("percent", "0"), param=f"{where}.percent")
        fixed_minor = money.to_minor(fee.get("fixed", "0"), currency, param=f"{where}.fixed")
        cleaned.append(FeeSpec(currency=currency, percent=percent, fixed_minor=fixed_minor))
    return cleaned


def _check_mode(*, gateway: str, mode: str) -> None:
    cls = gateway_class(gateway)
    if mode not in cls.allowed_modes:
        raise ValidationError(
            f"{gateway} accounts exist only in {', '.join(sorted(cls.allowed_modes))} mode.",
            code="gateway_mode_invalid",
            param="gateway",
        )


def _write_fees(account: GatewayAccount, fees: list[FeeSpec]) -> None:
    GatewayFee.objects.filter(account=account).delete()
    GatewayFee.objects.bulk_create(
        [
            GatewayFee(account=account, currency=f.currency, percent=f.percent, fixed_minor=f.fixed_minor)
            for f in fees
        ]
    )


def _conflict(account_gateway: str, mode: str) -> Conflict:
    return Conflict(
        f"An enabled {account_gateway} account already exists in {mode} mode; disable it first.",
        code="gateway_account_exists",
        param="enabled",
    )


def _audit(*, actor, merchant: Merchant, operation: str, account: GatewayAccount, changed: list[str]) -> None:
    if actor is None:
        return
    # Field names only: credential values never reach the audit log.
    audit_record(
        action=AuditLog.Action.ADMIN_ACTION,
        actor=actor,
        merchant=merchant,
        operation=operation,
        mode=account.mode,  # the row's mode (admin keys read their own mode's rows)
        gateway_account=account.pk,
        gateway=account.gateway,
        changed=changed,
    )


def gateway_account_create(
    *,
    merchant: Merchant,
    mode: str,
    gateway: str,
    credentials: dict | None = None,
    currencies: list[str] | None = None,
    enabled: bool = True,
    fees: list[dict] | None = None,
    metadata: dict | None = None,
    actor=None,
) -> GatewayAccount:
    """Create an account; credentials are validated per gateway and stored encrypted. 409 if an enabled account
    for the same gateway and mode exists and this one is enabled too."""
    cls = gateway_class(gateway)
    _check_mode(gateway=gateway, mode=mode)
    if cls.credential_fields:
        cleaned_credentials = cls.validate_credentials(credentials, mode=mode)
    else:
        if credentials:
            raise ValidationError(
                f"{gateway} takes no credentials; PayTrust generates its signing secret.",
                code="parameter_unknown",
                param="credentials",
            )
        cleaned_credentials = cls.generated_credentials()
    if currencies is None:
        currencies = [c for c in ENABLED_CURRENCIES if cls.currency_refusal(c) is None]
    cleaned_currencies = clean_currencies(gateway=gateway, currencies=currencies)
    cleaned_fees = clean_fees(fees=fees, currencies=cleaned_currencies)
    account = GatewayAccount(
        merchant=merchant,
        mode=mode,
        gateway=gateway,
        currencies=cleaned_currencies,
        enabled=bool(enabled),
        metadata=metadata or {},
        credentials_encrypted=crypto.encrypt_json(cleaned_credentials) if cleaned_credentials else "",
        credentials_hint=credentials_hint(cleaned_credentials, fields=cls.credential_fields),
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                account.save(force_insert=True)
        except IntegrityError:
            raise _conflict(gateway, mode)
        _write_fees(account, cleaned_fees)
        _audit(
            actor=actor,
            merchant=merchant,
            operation="gateway_account.created",
            account=account,
            changed=["gateway", "currencies", "enabled", "fees", "metadata"]
            + (["credentials"] if cls.credential_fields else []),
        )
    return account


def gateway_account_update(
    *,
    account: GatewayAccount,
    credentials: dict | None = UNSET,
    currencies: list[str] = UNSET,
    enabled: bool = UNSET,
    fees: list[dict] = UNSET,
    metadata: dict = UNSET,
    actor=None,
    drop_stray_fees: bool = False,
) -> GatewayAccount:
    """Partial update. `credentials` MERGES over the stored ones (send only the key you rotate) and the result is
    validated as a whole; `currencies`, `fees` and `metadata` replace. Gateway and mode never change.
    Removing a currency that still has a fee is refused unless `fees` is sent or `drop_stray_fees` is set."""
    from gateways.selectors import gateway_account_credentials

    cls = gateway_class(account.gateway)
    with transaction.atomic():
        locked = GatewayAccount.objects.select_for_update().get(pk=account.pk)
        changed: list[str] = []
        if credentials is not UNSET:
            if not cls.credential_fields:
                raise ValidationError(
                    f"{locked.gateway} takes no credentials.", code="parameter_unknown", param="credentials"
                )
            if not isinstance(credentials, dict):
                raise ValidationError("credentials must be an object.", param="credentials")
            merged = {**gateway_account_credentials(account=locked), **credentials}
            cleaned = cls.validate_credentials(merged, mode=locked.mode)
            locked.credentials_encrypted = crypto.encrypt_json(cleaned)
            locked.credentials_hint = credentials_hint(cleaned, fields=cls.credential_fields)
            changed.append("credentials")
        if currencies is not UNSET:
            locked.currencies = clean_currencies(gateway=locked.gateway, currencies=currencies)
            changed.append("currencies")
        if fees is not UNSET:
            new_fees = clean_fees(fees=fees, currencies=locked.currencies)
            _write_fees(locked, new_fees)
            changed.append("fees")
        else:
            stray = GatewayFee.objects.filter(account=locked).exclude(currency__in=locked.currencies)
            if drop_stray_fees:
                stray.delete()
            elif stray.exists():
                raise ValidationError(
                    f"This account has a fee for {stray.first().currency}, which is no longer in currencies; "
                    "send fees too.",
                    code="fee_currency_invalid",
                    param="currencies",
                )
        if enabled is not UNSET:
            locked.enabled = bool(enabled)
            changed.append("enabled")
        if metadata is not UNSET:
            locked.metadata = metadata or {}
            changed.append("metadata")
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise _conflict(locked.gateway, locked.mode)
        _audit(
            actor=actor,
            merchant=locked.merchant,
            operation="gateway_account.updated",
            account=locked,
            changed=changed,
        )
    return locked


def merchant_onboard(
    *, name: str, rate_limit_per_minute: int | None = None, actor: Actor | None = None, **profile
) -> Merchant:
    """A new merchant ready to take test payments: the merchant (merchants.services.merchant_create) and its
    test-mode sandbox gateway account, in one transaction, audited (`merchant.created`) when an actor is given.
    The admin's "add merchant", `manage.py create_merchant` and `seed_demo` call this."""
    with transaction.atomic():
        merchant = merchant_create(name=name, rate_limit_per_minute=rate_limit_per_minute, **profile)
        gateway_account_ensure_sandbox(merchant=merchant)
        if actor is not None:
            fields = ["name", "rate_limit_per_minute", *profile]
            _audit_merchant(
                actor=actor, merchant=merchant, operation="merchant.created", fields=sorted(fields)
            )
    return merchant


def merchant_settings_update(*, merchant: Merchant, actor: Actor, **changes) -> Merchant:
    """Change a merchant's settings or creditor profile (merchants.services.merchant_update), audited
    (`merchant.updated`, field names only) in the same transaction when something changed."""
    with transaction.atomic():
        merchant, changed = merchant_update(merchant=merchant, **changes)
        if changed:
            _audit_merchant(actor=actor, merchant=merchant, operation="merchant.updated", fields=changed)
    return merchant


def _audit_merchant(*, actor: Actor, merchant: Merchant, operation: str, fields: list[str]) -> None:
    audit_record(
        action=AuditLog.Action.ADMIN_ACTION,
        actor=actor,
        merchant=merchant,
        operation=operation,
        fields=fields,
    )


def gateway_account_ensure_sandbox(*, merchant: Merchant) -> GatewayAccount:
    """Every merchant has an enabled `sandbox` account in test mode (no merchant credentials). Idempotent."""
    account = GatewayAccount.objects.filter(
        merchant=merchant, mode=Mode.TEST, gateway=GatewayName.SANDBOX, enabled=True
    ).first()
    if account is None:
        account = gateway_account_create(merchant=merchant, mode=Mode.TEST, gateway=GatewayName.SANDBOX)
    return account


@dataclass
class RotationReport:
    rows_seen: int = 0
    rows_rotated: int = 0
    rows_failed: int = 0


def encryption_keys_rotate(
    *, batch_size: int = 500, dry_run: bool = False, progress=None
) -> dict[str, RotationReport]:
    """Re-encrypt every registered encrypted field (paytrust.crypto.register_encrypted_field) under the first key
    of FIELD_ENCRYPTION_KEYS. Rows already under it are skipped; undecryptable rows are counted, not changed.
    Each batch is locked (select_for_update) and rewritten in its own transaction."""
    reports: dict[str, RotationReport] = {}
    for entry in crypto.encrypted_fields():
        model = apps.get_model(entry.model_label)
        field = entry.field_name
        report = reports.setdefault(f"{entry.model_label}.{field}", RotationReport())
        last_pk = None
        while True:
            with transaction.atomic():
                qs = model.objects.exclude(**{field: ""}).order_by("pk")
                if last_pk is not None:
                    qs = qs.filter(pk__gt=last_pk)
                rows = list(qs.select_for_update().only("pk", field)[:batch_size])
                if not rows:
                    break
                last_pk = rows[-1].pk
                for row in rows:
                    report.rows_seen += 1
                    token = getattr(row, field)
                    try:
                        if crypto.is_current(token):
                            continue
                        rotated = crypto.rotate_token(token)
                    except crypto.DecryptionError:
                        report.rows_failed += 1
                        logger.error(
                            "cannot decrypt for rotation", extra={"model": entry.model_label, "pk": row.pk}
                        )
                        continue
                    report.rows_rotated += 1
                    if not dry_run:
                        model.objects.filter(pk=row.pk).update(**{field: rotated})
                if progress is not None:
                    progress(len(rows))
    return reports
