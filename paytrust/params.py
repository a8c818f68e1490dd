"""Query-string parameters shared by the list and report endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime

from paytrust.errors import ValidationError


def query_datetime(raw: str | None, param: str) -> datetime | None:
    """An RFC 3339 date-time (no offset means UTC) or a date YYYY-MM-DD (its midnight UTC); None when absent.

    A `+` offset arrives as a space when the client did not percent-encode it (`?start=2026-01-01T00:00:00+07:00`)
    and is read as `+`. Anything else, including impossible dates (2024-02-30), is 400 with `param`."""
    if raw in (None, ""):
        return None
    message = f"{param} must be an RFC 3339 date-time or a date (YYYY-MM-DD)."
    try:
        value = parse_datetime(raw.replace(" ", "+"))
        day = parse_date(raw) if value is None else None
    except ValueError:
        raise ValidationError(message, param=param) from None
    if value is None:
        if day is None:
            raise ValidationError(message, param=param)
        value = datetime.combine(day, time.min)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
