"""The pool's borrow-time check (paytrust.postgresql): a connection the server ended is replaced before a request
gets it, one idle for long is checked with the empty query, and one in use moments ago is handed out without the
empty query's round trip. Real connections to the test database, a real `pg_terminate_backend`."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from paytrust.postgresql import base as backend
from paytrust.postgresql.base import check_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool():
    params = {**connection.get_connection_params(), "autocommit": True}
    params.pop("cursor_factory", None)
    with ConnectionPool(kwargs=params, min_size=1, max_size=1, check=check_connection, timeout=10) as pool:
        yield pool


def _last_query(pid: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot per transaction
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row[0] if row else None


def test_the_projects_pool_uses_this_check():
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    if connection.pool is None:
        pytest.skip("DB_POOL is off in this environment")
    assert connection.pool._check is check_connection


def test_a_connection_in_use_moments_ago_is_handed_out_without_a_round_trip(pool):
    with pool.connection() as conn:
        pid = conn.info.backend_pid
        conn.execute("SELECT 'marker' AS last_statement")
    with pool.connection() as conn:
        assert conn.info.backend_pid == pid  # the same connection, checked
    # psycopg's check would have sent an empty query, which pg_stat_activity would show as the last statement.
    assert _last_query(pid) == "SELECT 'marker' AS last_statement"


def test_a_connection_idle_for_long_gets_the_empty_query(pool, monkeypatch):
    with pool.connection() as conn:
        pid = conn.info.backend_pid
        conn.execute("SELECT 'marker' AS last_statement")
    monkeypatch.setattr(backend, "IDLE_CHECK_SECONDS", 0.0)  # every connection counts as idle for long
    with pool.connection() as conn:
        assert conn.info.backend_pid == pid
    assert _last_query(pid) == ""  # the empty query ran (a peer gone without a word would have failed it)


def test_a_connection_the_server_ended_is_replaced_before_it_is_handed_out(pool):
    with pool.connection() as conn:
        pid = conn.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while _last_query(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)  # the backend is gone once pg_stat_activity no longer lists it
    with pool.connection() as conn:  # the dead one fails the check; the pool gives a new one
        assert conn.info.backend_pid != pid
        assert conn.execute("SELECT 1").fetchone() == (1,)
