"""Query-string parameters shared by the list and report endpoints.

An optional parameter is absent or valid: an empty value (`?status=`) is parsed like any other, so it is a 400
unless the parameter's type admits an empty string, exactly as the OpenAPI schema says."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime

from paytrust.errors import ValidationError

QUERY_DATETIME_MIN = datetime(1, 1, 2, tzinfo=UTC)
QUERY_DATETIME_MAX = datetime(9999, 12, 30, tzinfo=UTC)


def query_datetime(raw: str | None, param: str) -> datetime | None:
    """An RFC 3339 date-time (no offset means UTC) or a date YYYY-MM-DD (its midnight UTC), returned in UTC
    (PostgreSQL refuses offsets beyond ±15:59, RFC 3339 allows up to ±23:59); None when absent.

    A `+` offset arrives as a space when the client did not percent-encode it (`?start=2026-01-01T00:00:00+07:00`)
    and is read as `+`. Anything else, including impossible dates (2024-02-30), is 400 with `param`."""
    if raw is None:
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
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    # Python's datetimes end at years 1 and 9999: an offset that moves the instant past either end (or a day of
    # arithmetic on it, e.g. a report's daily buckets) would overflow; refuse it here.
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not (QUERY_DATETIME_MIN <= in_utc <= QUERY_DATETIME_MAX):
        raise ValidationError(
            f"{param} must lie between {QUERY_DATETIME_MIN:%Y-%m-%d} and {QUERY_DATETIME_MAX:%Y-%m-%d} (UTC).",
            param=param,
        )
    return in_utc


def query_choice(raw: str | None, param: str, choices: Iterable[str]) -> str | None:
    """An optional parameter documented as an enum: one of `choices` exactly, None when absent; anything else
    (also an empty `?status=`) is 400 with `param`."""
    if raw is None:
        return None
    choices = list(choices)
    if raw not in choices:
        raise ValidationError(f"{param} must be one of {', '.join(choices)}.", param=param)
    return raw


def query_bool(raw: str | None, param: str) -> bool | None:
    """An optional boolean parameter: `true` or `false`, None when absent; anything else is 400 with `param`."""
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise ValidationError(f"{param} must be true or false.", param=param)
    return raw == "true"
