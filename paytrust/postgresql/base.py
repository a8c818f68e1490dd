"""Django's PostgreSQL backend, whose psycopg pool checks a borrowed connection without a round trip when the
connection shows no sign of trouble (ADR 0024).

With CONN_HEALTH_CHECKS, Django gives the pool `ConnectionPool.check_connection`: an empty query on every borrow,
i.e. one more round trip on every request (each request borrows its connection anew), ~5 % of invoice creation's
CPU. A connection the server has ended - a restart, `pg_terminate_backend`, a failover, the server process
killed - has something to read on its socket: the server's FATAL message and the end of the stream, which the
kernel delivers as soon as the server closes it. So `check_connection` here first polls the socket (one
non-blocking `select`, no I/O): nothing to read means nothing has happened to the connection since it was
returned healthy (the pool discards a connection returned broken), and it is handed out as it is; anything to
read (the end of the stream, an error, a notice or a notification) gets psycopg's own check, the empty query,
which raises for a dead connection so that the pool replaces it, exactly as before.

What the poll cannot see is a peer that vanished without closing (a host powered off, a network partition); the
empty query would not see it either (it would block until the TCP timeout), so nothing is lost there.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def check_connection(conn) -> None:
    """The pool's borrow-time check: psycopg's empty query only if the idle connection's socket has anything to
    read (see the module docstring); raises for a dead connection as `ConnectionPool.check_connection` does."""
    if conn.closed:
        ConnectionPool.check_connection(conn)  # raises OperationalError: the pool replaces it
        return
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django passes `check=ConnectionPool.check_connection` when CONN_HEALTH_CHECKS is on; this backend's
        # check replaces it (psycopg_pool keeps it as `_check`; tests/test_db_pool_check.py fails if it stops).
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_connection
        return pool
