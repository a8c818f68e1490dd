"""Reads of gateway accounts for other apps (invoices resolve an invoice's gateway and its fee here)."""

from __future__ import annotations

import threading
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
from paytrust.sql import Check, instance_from_row, prepared_cursor


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
    # Read from this process's cache: the writing statement must assert it (`paytrust.sql.Check`), else None.
    unchanged: Check | None = None


class _AccountCache:
    """(merchant, mode, ref, currency) -> the account+fee row an earlier lookup accepted. Per process, bounded.
    Never trusted on its own: what it serves comes with a `Check` the write asserts (a changed or disabled
    account or fee fails that write, which writes nothing, and the caller reads again with `refresh`)."""

    def __init__(self) -> None:
        self._rows: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple | None:
        return self._rows.get(key)

    def put(self, key: tuple, row: tuple) -> None:
        with self._lock:
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[key] = row

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


account_cache = _AccountCache()


def gateway_account_with_fee(
    *,
    merchant: Merchant,
    mode: str,
    ref: str,
    currency: str,
    param: str = "gateway",
    cached: bool = False,
    refresh: bool = False,
) -> AccountWithFee:
    """`gateway_account_resolve` and `gateway_fee_for` in one pre-built query (invoice creation's hot path).

    Same errors as `gateway_account_resolve`; no fee configured for the currency means no fee. With `cached`,
    a row this process read before is served without a query, with `unchanged`: a `Check` that the same lookup,
    run again inside the writing statement, still returns that account with that fee (ADR 0024); with `refresh`
    too, the row is read again (after a failed check) and cached."""
    if not isinstance(ref, str) or not ref:
        raise ValidationError("gateway is required.", code="parameter_missing", param=param)
    sql, fields = _account_fee_query(by_id=ref.startswith("gwa_"))
    lookup = [currency, merchant.pk, mode, ref]
    key = (merchant.pk, mode, ref, currency)
    row = account_cache.get(key) if cached and not refresh else None
    from_cache = row is not None
    if row is None:
        with prepared_cursor() as cursor:
            cursor.execute(sql, lookup)
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
    if cached and not from_cache:
        account_cache.put(key, tuple(row))
    unchanged = None
    if from_cache:
        unchanged = Check(
            _unchanged_sql(by_id=ref.startswith("gwa_")),
            [*lookup, account.id, account.gateway, list(account.currencies), percent, fixed],
        )
    if percent is None:  # no GatewayFee row for this currency
        return AccountWithFee(account, Decimal(0), 0, unchanged)
    return AccountWithFee(account, percent, fixed, unchanged)


@cache
def _unchanged_sql(*, by_id: bool) -> str:
    """The lookup, run again by the writing statement: it still finds this account, gateway and currencies, and
    this fee (or still none). Parameters: the lookup's, then the values read."""
    sql, _fields = _account_fee_query(by_id=by_id)
    return (
        f"EXISTS (SELECT FROM ({sql}) x WHERE x.id = %s AND x.gateway = %s AND x.currencies = %s::varchar[] "  # noqa: S608
        "AND x.percent IS NOT DISTINCT FROM %s::numeric AND x.fixed_minor IS NOT DISTINCT FROM %s::bigint)"
    )


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
