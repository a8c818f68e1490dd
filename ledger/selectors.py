"""Reads of the ledger (the balance API, verify_ledger and the posting rules above read through these)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Prefetch, QuerySet, Sum

from ledger.models import Account, Entry, Movement
from paytrust.errors import NotFound


def source_account_total(*, source_type: str, source_ids: Iterable[str], code: str) -> int:
    """The signed sum of the entries on accounts with `code` of the movements caused by these objects."""
    ids = list(source_ids)
    if not ids:
        return 0
    total = Entry.objects.filter(
        movement__source_type=source_type, movement__source_id__in=ids, account__code=code
    ).aggregate(total=Sum("amount_minor"))["total"]
    return int(total or 0)


def movement_lines(*, source_type: str, source_id: str, type: str) -> dict[str, int]:
    """A posted movement's lines (account code -> signed amount), {} when it was never posted."""
    lines: dict[str, int] = {}
    for code, amount in Entry.objects.filter(
        movement__source_type=source_type, movement__source_id=source_id, movement__type=type
    ).values_list("account__code", "amount_minor"):
        lines[code] = lines.get(code, 0) + amount
    return lines


# ---- the balance API (GET /v1/balance, /v1/balance/transactions) ------------------------------------------------


def account_balances(*, merchant, mode: str, codes: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """The tenant's balance per currency and account code: currency -> code -> signed sum (debit > 0).

    One aggregate: the tenant's accounts (a handful per currency) LEFT JOIN their entries, GROUP BY currency and
    code; the entries are read from `ledger_entry_account` (account_id INCLUDE amount_minor) by an index-only scan.
    A currency appears as soon as it has an account (of `codes`, when given: only those accounts are read, so the
    balance API does not scan the gateway side); an account without entries sums to 0."""
    balances: dict[str, dict[str, int]] = {}
    for currency, code, total in account_balances_query(merchant=merchant, mode=mode, codes=codes):
        balances.setdefault(currency, {})[code] = int(total or 0)
    return balances


def account_balances_query(*, merchant, mode: str, codes: Iterable[str] | None = None) -> QuerySet:
    """(currency, code, total) rows of `account_balances` (bench/ledger_bench.py EXPLAINs it). Ordered by currency and
    code explicitly: Account's default ordering starts with the merchant FK, which would join the merchants table."""
    accounts = Account.objects.filter(merchant=merchant, mode=mode)
    if codes is not None:
        accounts = accounts.filter(code__in=list(codes))
    return (
        accounts.values_list("currency", "code")
        .annotate(total=Sum("entries__amount_minor"))
        .order_by("currency", "code")
    )


def movement_list(
    *,
    merchant,
    mode: str,
    type: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Movement]:
    """The tenant's movements (newest first by `occurred_at`: the cursor pagination orders them), optionally of one
    type and in [start, end) of their business time; each page's entries and accounts in two more queries."""
    qs = Movement.objects.filter(merchant=merchant, mode=mode).prefetch_related(
        Prefetch("entries", queryset=Entry.objects.select_related("account").order_by("id"))
    )
    if type is not None:
        qs = qs.filter(type=type)
    if start is not None:
        qs = qs.filter(occurred_at__gte=start)
    if end is not None:
        qs = qs.filter(occurred_at__lt=end)
    return qs


def movement_get(*, merchant, mode: str, movement_id: str) -> Movement:
    """One of the tenant's movements with its entries; another tenant's or mode's is a 404."""
    movement = movement_list(merchant=merchant, mode=mode).filter(pk=movement_id).first()
    if movement is None:
        raise NotFound(f"No such balance transaction: {movement_id[:64]!r}.", param="id")
    return movement
