"""Timestamps are read by psycopg's C loader on UTC connections (paytrust/postgresql/base.py), with exactly the
values and the `datetime.timezone.utc` that Django's own (pure-Python) loader gives."""

from datetime import UTC

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader

from paytrust.postgresql.base import UtcTimestamptzLoader
from paytrust.sql import prepared_cursor

VALUES = [
    "2026-05-01 12:00:00.123456+07",
    "2026-03-29 01:30:00-03:30",
    "1970-01-01 00:00:00+00",
    "2000-02-29 23:59:59.999999+14",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    None,
]


def _read(cursor) -> list:
    cursor.execute(
        "SELECT " + ", ".join(f"%s::timestamptz AS t{i}" for i in range(len(VALUES))),  # noqa: S608
        VALUES,
    )
    return list(cursor.fetchone())


@pytest.mark.django_db
def test_the_c_loader_reads_what_djangos_loader_reads():
    connection.ensure_connection()
    assert connection.connection.adapters.get_loader(1184, 0) is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        ours = _read(cursor)
    with connection.cursor() as cursor:
        register_tzloader(UTC, cursor.cursor)  # Django's loader, on this cursor only
        djangos = _read(cursor)
    with prepared_cursor() as cursor:
        prepared = _read(cursor)
    assert ours == djangos == prepared
    assert all(value.tzinfo is UTC for value in ours if value is not None)
    assert [value.isoformat() if value else None for value in ours] == [
        value.isoformat() if value else None for value in djangos
    ]
