"""paytrust.params.query_datetime: the one parser of date-time query parameters (invoices, audit log, reports)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from paytrust.errors import ValidationError
from paytrust.params import query_bool, query_choice, query_datetime


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
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
    "raw", ["", "yesterday", "2026-13-01", "2024-02-30", "2026-01-01T25:00:00Z", "1700000000"]
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


def test_an_offset_postgresql_cannot_store_is_returned_in_utc():
    # RFC 3339 allows offsets up to ±23:59; PostgreSQL refuses more than ±15:59 (a 500 before).
    value = query_datetime("2026-03-07T16:46:01+21:28", "created_lt")
    assert value == datetime(2026, 3, 6, 19, 18, 1, tzinfo=UTC) and value.tzinfo is UTC


@pytest.mark.parametrize("raw", ["", "Draft", " draft", "draft "])
def test_a_choice_is_exact_and_an_empty_value_is_not_absent(raw):
    with pytest.raises(ValidationError) as caught:
        query_choice(raw, "status", ["draft", "paid"])
    assert caught.value.param == "status"


def test_an_absent_choice_or_bool_is_none():
    assert query_choice(None, "status", ["draft"]) is None and query_bool(None, "enabled") is None
    assert query_choice("draft", "status", ["draft"]) == "draft"
    assert (query_bool("true", "enabled"), query_bool("false", "enabled")) == (True, False)


@pytest.mark.parametrize("raw", ["", "1", "True", "yes"])
def test_a_bool_is_true_or_false(raw):
    with pytest.raises(ValidationError) as caught:
        query_bool(raw, "enabled")
    assert caught.value.param == "enabled"
