"""paytrust.params.query_datetime: the one parser of date-time query parameters (invoices, audit log, reports)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from paytrust.errors import ValidationError
from paytrust.params import query_datetime


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:30:00", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
        ("2026-03-01T10:30:00Z", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
        ("2026-03-01T10:30:00+07:00", datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=7)))),
        # an unencoded "+" in a query string arrives as a space
        ("2026-03-01T10:30:00 07:00", datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=7)))),
    ],
)
def test_accepted_forms(raw, expected):
    assert query_datetime(raw, "start") == expected


@pytest.mark.parametrize(
    "raw", ["yesterday", "2026-13-01", "2024-02-30", "2026-01-01T25:00:00Z", "1700000000"]
)
def test_bad_values_are_400_with_the_param(raw):
    with pytest.raises(ValidationError) as caught:
        query_datetime(raw, "created_gte")
    assert caught.value.param == "created_gte" and caught.value.code == "parameter_invalid"


@pytest.mark.parametrize(
    "raw",
    [
        "9999-12-31T23:00:00-05:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T00:00:00Z",  # a day of arithmetic on it would overflow
        "0001-01-01",
    ],
)
def test_instants_at_the_ends_of_the_calendar_are_400_with_the_param(raw):
    with pytest.raises(ValidationError) as caught:
        query_datetime(raw, "end")
    assert caught.value.param == "end" and "between" in caught.value.message
