"""Reads of the ledger (the balance API, verify_ledger and the posting rules above read through these)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Sum

from ledger.models import Entry


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
