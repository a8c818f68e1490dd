"""Reads for API keys and the audit log (admin API and admin site)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db.models import QuerySet

from apikeys.models import ApiKey, AuditLog
from paytrust.errors import NotFound
from paytrust.models import Mode
from paytrust.sql import instance_from_row, prepared_cursor


def _visible_modes(caller_mode: str) -> list[str]:
    """A live-mode admin key sees test and live keys; a test-mode admin key only test keys."""
    return [Mode.TEST, Mode.LIVE] if caller_mode == Mode.LIVE else [Mode.TEST]


def api_key_list(*, merchant_id: str, caller_mode: str) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(
        merchant_id=merchant_id, mode__in=_visible_modes(caller_mode)
    ).select_related("rotated_from")


def api_key_get(*, key_id: str, caller_mode: str) -> ApiKey:
    """Any merchant's key (admin scope), within the modes the caller may see; else 404."""
    key = (
        ApiKey.objects.filter(pk=key_id, mode__in=_visible_modes(caller_mode))
        .select_related("merchant", "rotated_from")
        .first()
    )
    if key is None:
        raise NotFound("No such API key.", param="id")
    return key


def audit_log_list(
    *,
    mode: str,
    merchant_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    key_id: str | None = None,
    action: str | None = None,
) -> QuerySet[AuditLog]:
    """Audit rows of `mode` (a live reader also sees the rows of no mode: back-office and operator actions), of one
    merchant or of all, newest first, optionally between `start` (inclusive) and `end` (exclusive)."""
    qs = AuditLog.objects.filter(mode__in=[mode, ""] if mode == Mode.LIVE else [mode])
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    if start is not None:
        qs = qs.filter(created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lt=end)
    if key_id:
        qs = qs.filter(api_key_id=key_id)
    if action:
        qs = qs.filter(action=action)
    return qs


@dataclass(frozen=True)
class AuthQuery:
    columns: str  # the key's columns, then its merchant's (aliases k and m)
    tables: str  # "apikeys_apikey k JOIN merchants_merchant m ON …"
    key_fields: list
    merchant_fields: list

    @property
    def sql(self) -> str:
        return f"SELECT {self.columns} FROM {self.tables} WHERE k.prefix = %s"  # noqa: S608


@cache
def auth_query() -> AuthQuery:
    """SELECT of a key and its merchant by prefix, written once: the ORM's per-call compilation of this join
    cost more than the query itself on the hottest path of the API."""
    from django.db import connection

    from merchants.models import Merchant

    quote = connection.ops.quote_name
    key_fields = list(ApiKey._meta.concrete_fields)
    merchant_fields = list(Merchant._meta.concrete_fields)
    columns = [f"k.{quote(f.column)}" for f in key_fields] + [f"m.{quote(f.column)}" for f in merchant_fields]
    # Only identifiers from the model metadata (quoted) are interpolated; values are bound parameters.
    tables = (
        f"{quote(ApiKey._meta.db_table)} k "
        f"JOIN {quote(Merchant._meta.db_table)} m ON m.{quote('id')} = k.{quote('merchant_id')}"
    )
    return AuthQuery(", ".join(columns), tables, key_fields, merchant_fields)


def key_from_row(row) -> ApiKey:
    """The key, its merchant loaded, from the first columns of a row selected with `auth_query().columns`."""
    from merchants.models import Merchant

    query = auth_query()
    split = len(query.key_fields)
    key = instance_from_row(ApiKey, query.key_fields, row[:split])
    key.merchant = instance_from_row(
        Merchant, query.merchant_fields, row[split : split + len(query.merchant_fields)]
    )
    return key


def api_key_for_auth(*, prefix: str) -> ApiKey | None:
    """The key with this lookup prefix and its merchant (loaded), in one indexed query; None if unknown."""
    with prepared_cursor() as cursor:  # parsed and planned once per connection
        cursor.execute(auth_query().sql, [prefix])
        row = cursor.fetchone()
    return None if row is None else key_from_row(row)
