"""Reads of gateway accounts for other apps (invoices resolve an invoice's gateway and its fee here)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from gateways.models import GatewayAccount, GatewayFee
from merchants.models import Merchant
from paytrust import crypto
from paytrust.errors import NotFound, ValidationError
from paytrust.sql import instance_from_row, prepared_cursor


def gateway_account_resolve(
    *, merchant: Merchant, mode: str, ref: str, currency: str, param: str = "gateway"
):
    """The merchant's enabled gateway account for `ref` (a gateway name or a `gwa_` id) that takes `currency`.

    Raises a 400 ValidationError (param=`gateway`) when there is none, it is disabled, or it lacks the currency.
    """
    if not isinstance(ref, str) or not ref:
        raise ValidationError("gateway is required.", code="parameter_missing", param=param)
    qs = GatewayAccount.objects.filter(merchant=merchant, mode=mode, enabled=True)
    account = qs.filter(pk=ref).first() if ref.startswith("gwa_") else qs.filter(gateway=ref).first()
    if account is None:
        raise ValidationError(
            f"No enabled gateway account {ref!r} for this merchant in {mode} mode.",
            code="gateway_unavailable",
            param=param,
        )
    if currency not in account.currencies:
        raise ValidationError(
            f"Gateway {account.gateway} does not accept {currency} for this merchant.",
            code="gateway_currency_unsupported",
            param=param,
        )
    return account


def gateway_fee_for(*, account: GatewayAccount, currency: str) -> tuple[Decimal, int]:
    """(percent, fixed minor units) for the account and currency; no fee configured means no fee."""
    fee = GatewayFee.objects.filter(account=account, currency=currency).first()
    if fee is None:
        return Decimal(0), 0
    return fee.percent, fee.fixed_minor


@dataclass(frozen=True)
class AccountWithFee:
    account: GatewayAccount
    fee_percent: Decimal
    fee_fixed_minor: int


def gateway_account_with_fee(
    *, merchant: Merchant, mode: str, ref: str, currency: str, param: str = "gateway"
) -> AccountWithFee:
    """`gateway_account_resolve` and `gateway_fee_for` in one pre-built query (invoice creation's hot path).

    Same errors as `gateway_account_resolve`; no fee configured for the currency means no fee."""
    if not isinstance(ref, str) or not ref:
        raise ValidationError("gateway is required.", code="parameter_missing", param=param)
    sql, fields = _account_fee_query(by_id=ref.startswith("gwa_"))
    with prepared_cursor() as cursor:
        cursor.execute(sql, [currency, merchant.pk, mode, ref])
        row = cursor.fetchone()
    if row is None:
        raise ValidationError(
            f"No enabled gateway account {ref!r} for this merchant in {mode} mode.",
            code="gateway_unavailable",
            param=param,
        )
    account = instance_from_row(GatewayAccount, fields, row[: len(fields)])
    if currency not in account.currencies:
        raise ValidationError(
            f"Gateway {account.gateway} does not accept {currency} for this merchant.",
            code="gateway_currency_unsupported",
            param=param,
        )
    percent, fixed = row[len(fields) :]
    if percent is None:  # no GatewayFee row for this currency
        return AccountWithFee(account, Decimal(0), 0)
    return AccountWithFee(account, percent, fixed)


@cache
def _account_fee_query(*, by_id: bool) -> tuple[str, list]:
    """The enabled account of a merchant and mode by id or gateway name (at most one: unique constraint), LEFT
    JOINed to its fee for one currency (at most one: unique constraint). Written once: compiling the two ORM
    queries cost more than running them."""
    quote = connection.ops.quote_name
    fields = list(GatewayAccount._meta.concrete_fields)
    columns = ", ".join(f"a.{quote(f.column)}" for f in fields)
    fee = GatewayFee._meta
    # Only identifiers from the model metadata are interpolated; values are bound parameters.
    sql = (
        f"SELECT {columns}, f.{quote(fee.get_field('percent').column)}, "  # noqa: S608
        f"f.{quote(fee.get_field('fixed_minor').column)} "
        f"FROM {quote(GatewayAccount._meta.db_table)} a "
        f"LEFT JOIN {quote(fee.db_table)} f "
        f"ON f.{quote(fee.get_field('account').column)} = a.{quote('id')} "
        f"AND f.{quote(fee.get_field('currency').column)} = %s "
        f"WHERE a.{quote('merchant_id')} = %s AND a.{quote('mode')} = %s AND a.{quote('enabled')} "
        f"AND a.{quote('id' if by_id else 'gateway')} = %s "
        f"ORDER BY a.{quote('created_at')} DESC LIMIT 1"
    )
    return sql, fields


def gateway_account_list(
    *, merchant: Merchant, mode: str, gateway: str | None = None, enabled: bool | None = None
) -> QuerySet[GatewayAccount]:
    qs = GatewayAccount.objects.filter(merchant=merchant, mode=mode).prefetch_related("fees")
    if gateway:
        qs = qs.filter(gateway=gateway)
    if enabled is not None:
        qs = qs.filter(enabled=enabled)
    return qs


def gateway_account_get(*, merchant: Merchant, mode: str, account_id: str) -> GatewayAccount:
    """One of the merchant's accounts in this mode; another tenant's or mode's account is a 404."""
    account = (
        GatewayAccount.objects.filter(merchant=merchant, mode=mode, pk=account_id)
        .prefetch_related("fees")
        .first()
    )
    if account is None:
        raise NotFound("No such gateway account.", param="id")
    return account


def gateway_account_enabled(*, account_id: str) -> bool:
    """Whether the account may take new payments (a disabled one keeps its history and its webhooks)."""
    return GatewayAccount.objects.filter(pk=account_id, enabled=True).exists()


def gateway_account_for_webhook(*, gateway: str, account_id: str) -> GatewayAccount:
    """The account addressed by an inbound webhook URL /v1/webhooks/{gateway}/{account_id} (no tenant: public URL).

    404 when the id is unknown or belongs to another gateway. Disabled accounts still resolve: late
    notifications for payments made while they were enabled must not be lost.
    """
    account = GatewayAccount.objects.select_related("merchant").filter(pk=account_id, gateway=gateway).first()
    if account is None:
        raise NotFound("No such gateway account.")
    return account


def gateway_account_credentials(*, account: GatewayAccount) -> dict[str, str]:
    """Decrypted credentials (in memory only; never log or render them)."""
    return crypto.decrypt_json(account.credentials_encrypted)


def gateway_account_webhook_url(account: GatewayAccount) -> str:
    return f"{settings.PUBLIC_BASE_URL}/v1/webhooks/{account.gateway}/{account.pk}"
