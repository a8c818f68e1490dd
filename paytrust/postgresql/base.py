"""Django's PostgreSQL backend, whose psycopg pool checks a borrowed connection without a round trip when the
connection was in use moments ago and shows no sign of trouble (ADR 0024).

With CONN_HEALTH_CHECKS, Django gives the pool `ConnectionPool.check_connection`: an empty query on every borrow,
i.e. one more round trip on every request (each request borrows its connection anew), ~5 % of invoice creation's
CPU. `check_connection` here sends that empty query only when it could find something:
- the connection has been idle for IDLE_CHECK_SECONDS or more (measured from its previous borrow, which is
  earlier than its return): a peer that went away without closing (a virtual IP moved to a new primary, a NAT or
  load balancer that forgot an idle flow) answers the query with a reset, and the pool replaces the connection;
- or its socket has something to read: a connection the server ended (a restart, `pg_terminate_backend`, a
  backend killed) always has, the FATAL message and the end of the stream, which the kernel delivers as soon as
  the server closes it (a notice or a notification also makes it readable: the query then reads them).
Otherwise it is handed out as it is: it was returned healthy moments ago (the pool discards a connection returned
broken or rolls back one returned inside a transaction) and nothing has arrived since.

And timestamps are read by psycopg's C loader: Django registers, for every connection, a subclass of psycopg's
pure-Python `TimestamptzLoader` that parses the text and then sets the connection's time zone (~4 % of invoice
creation's CPU: each key lookup reads half a dozen timestamps). With the connection's time zone UTC (settings
TIME_ZONE, which Django also sets as the session's TimeZone) psycopg's C loader already returns exactly that,
`datetime.timezone.utc` (psycopg._tz), so `UtcTimestamptzLoader` is the C loader, with the `timezone` attribute
Django's cursors look at. Any other time zone keeps Django's loader.
"""

from __future__ import annotations

import select
import time
from datetime import UTC
from functools import cache

from django.db.backends.postgresql import base
from psycopg import adapt, postgres, pq
from psycopg_pool import ConnectionPool

_CTimestamptzLoader = postgres.adapters.get_loader(postgres.types["timestamptz"].oid, pq.Format.TEXT)


class UtcTimestamptzLoader(adapt.Loader):
    """psycopg's own (C, with psycopg_binary) timestamptz loader, for connections in UTC; a Python class around
    it because the C class cannot be subclassed and Django's cursors read the loader's `timezone`."""

    timezone = UTC

    def __init__(self, oid: int, context=None) -> None:
        super().__init__(oid, context)
        self._load = _CTimestamptzLoader(oid, context).load

    def load(self, data):
        return self._load(data)


@cache
def _utc_adapters(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    adapters = adapt.AdaptersMap(template)
    adapters.register_loader("timestamptz", UtcTimestamptzLoader)
    return adapters


IDLE_CHECK_SECONDS = 30.0  # well below the idle timeouts of NATs and load balancers (minutes)
_BORROWED_AT = "_paytrust_borrowed_at"  # monotonic time of the connection's previous borrow


def check_connection(conn) -> None:
    """The pool's borrow-time check: psycopg's empty query (which raises for a dead connection, so that the pool
    replaces it) unless the connection was borrowed less than IDLE_CHECK_SECONDS ago and its socket has nothing
    to read."""
    now = time.monotonic()
    previous = getattr(conn, _BORROWED_AT, None)
    setattr(conn, _BORROWED_AT, now)
    if previous is None or now - previous >= IDLE_CHECK_SECONDS or conn.closed or _readable(conn):
        ConnectionPool.check_connection(conn)


def _readable(conn) -> bool:
    """Whether the socket has anything to read, without blocking (poll, not select: any descriptor number)."""
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True  # cannot tell: the empty query decides


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if params.get("context") is not None and self.timezone is UTC:
            params["context"] = _utc_adapters(params["context"])
        return params

    @property
    def pool(self):
        pool = super().pool
        # Django passes `check=ConnectionPool.check_connection` when CONN_HEALTH_CHECKS is on (and also passes
        # `check=` itself, so OPTIONS["pool"] cannot carry another one); this backend's check replaces it
        # (psycopg_pool keeps it as `_check`; tests/test_db_pool_check.py fails if that stops working).
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_connection
        return pool
