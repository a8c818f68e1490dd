"""Cursor pagination, newest first, keyset over (created_at, id) — never OFFSET.

Response shape: {"data": [...], "has_more": bool, "next_cursor": "..." | null}.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from django.db.models import Q, QuerySet

from paytrust.errors import ValidationError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


# A few digits at most: int() of thousands of digits raises instead of returning a number.
_SMALL_INTEGER = re.compile(r"\+?0*[0-9]{1,4}")


def parse_limit(raw: str | None) -> int:
    """?limit=: absent means DEFAULT_LIMIT; anything but an integer 1–MAX_LIMIT (also `?limit=`) is a 400."""
    if raw is None:
        return DEFAULT_LIMIT
    if not _SMALL_INTEGER.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer between 1 and {MAX_LIMIT}.", param="limit")
    return int(raw)


# Every object id is a prefixed base62 string; a cursor naming anything else was not made by us.
_CURSOR_PK = re.compile(r"[A-Za-z0-9_]{1,64}")


def encode_cursor(created_at: datetime, pk: str) -> str:
    raw = f"{created_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_raw, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        created_at = datetime.fromisoformat(created_raw)
        if created_at.tzinfo is None or not _CURSOR_PK.fullmatch(pk):
            raise ValueError
        # An offset that pushes it past year 9999 raises OverflowError.
        created_at = created_at.astimezone(UTC)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("cursor is invalid.", code="cursor_invalid", param="cursor")
    return created_at, pk


def paginate(
    queryset: QuerySet,
    *,
    params,
    render: Callable[[Iterable], list],
    created_field: str = "created_at",
    pk_field: str = "pk",
) -> dict:
    """Apply ?limit= and ?cursor= to `queryset` and return the list envelope. `render` turns rows into dicts."""
    limit = parse_limit(params.get("limit"))
    cursor = params.get("cursor")
    qs = queryset.order_by(f"-{created_field}", f"-{pk_field}")
    if cursor is not None:  # `?cursor=` too: an empty string is not a cursor
        created_at, pk = decode_cursor(cursor)
        qs = qs.filter(
            Q(**{f"{created_field}__lt": created_at})
            | Q(**{created_field: created_at, f"{pk_field}__lt": pk})
        )
    rows = list(qs[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, created_field), getattr(last, pk_field))
    return {"data": render(rows), "has_more": has_more, "next_cursor": next_cursor}
