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
