"""Reads that may go to the streaming replica (DATABASE_REPLICA_URL), everything else to the primary.

Only handlers marked `@reads_from_replica` read from the replica: the financial report, the list endpoints and the
ISO 20022 exports (read-only, and tolerant of a bounded staleness: docs/adr/0057-scale-out.md). Authentication,
rate limiting and idempotency of those same requests, every write, every transaction and every other read stay
on the primary (`db_for_read` answers "replica" only inside such a handler; `db_for_write` is always the primary).

The replica is used only while it is *usable*: reachable and no further behind than
DATABASE_REPLICA_MAX_LAG_SECONDS. Each process checks that at most every DATABASE_REPLICA_CHECK_SECONDS (one
query on the replica); in between, the answer is reused. So the staleness a reader can see is bounded by
DATABASE_REPLICA_MAX_LAG_SECONDS + DATABASE_REPLICA_CHECK_SECONDS, and a replica that stopped streaming is not used.
A marked handler that loses its replica connection, or whose query the replica cancels, is run once more on the
primary (it only reads, so running it twice is harmless); a lost connection also takes the replica out of use until
the next check. So a stopped replica costs the report a retry, never a 500; a stopped primary is the usual 503.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger("paytrust.db")

REPLICA = "replica"
_reading_from_replica: ContextVar[bool] = ContextVar("reading_from_replica", default=False)

# Seconds the replica is behind, or NULL when it is not streaming from the primary (its WAL receiver is down:
# the primary restarted, replication broke, or it fell further behind than the primary keeps WAL for). 0 when it
# has replayed all it received (an idle primary sends nothing, so "now - last replay" alone would grow while the
# replica is fully caught up). pg_stat_wal_receiver's status needs a superuser or the pg_monitor role.
LAG_SQL = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN NULL"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


class ReplicaRouter:
    """settings.DATABASE_ROUTERS when a replica is configured."""

    def db_for_read(self, model, **hints):
        return REPLICA if _reading_from_replica.get() else DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same database, copied

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


class _ReplicaHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._usable = False
        self.reason = "not checked"

    def usable(self) -> bool:
        if REPLICA not in settings.DATABASES:
            return False
        if time.monotonic() - self._checked_at < settings.DATABASE_REPLICA_CHECK_SECONDS:
            return self._usable
        if not self._lock.acquire(blocking=False):
            return self._usable  # another thread is checking: use the last answer meanwhile
        try:
            self._usable, self.reason = self._check()
            self._checked_at = time.monotonic()
        finally:
            self._lock.release()
        return self._usable

    def mark_unusable(self, reason: str) -> None:
        self._usable, self.reason, self._checked_at = False, reason, time.monotonic()

    def peek(self) -> tuple[bool, str]:
        """The last answer, without checking (for /readyz: never waits on the replica)."""
        return self._usable, self.reason

    @staticmethod
    def _check() -> tuple[bool, str]:
        connection = connections[REPLICA]
        try:
            with connection.cursor() as cursor:
                cursor.execute(LAG_SQL)
                lag = cursor.fetchone()[0]
        except DatabaseError as exc:
            _close_quietly()
            return False, f"unreachable ({exc.__class__.__name__})"
        if lag is None:
            return False, "not streaming from the primary"
        if float(lag) > settings.DATABASE_REPLICA_MAX_LAG_SECONDS:
            return False, f"{float(lag):.1f} s behind"
        return True, "ok"


replica_health = _ReplicaHealth()


def _close_quietly() -> None:
    try:
        connections[REPLICA].close()
    except DatabaseError:
        pass


def reads_from_replica(handler):
    """Run a read-only view handler's ORM reads on the replica when it is usable, else on the primary."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        if not replica_health.usable():
            return handler(*args, **kwargs)
        token = _reading_from_replica.set(True)
        try:
            return handler(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            failure = exc  # the replica went away, or cancelled the query (timeout, replay conflict)
        finally:
            _reading_from_replica.reset(token)
        # Only a lost connection takes the replica out of use; a cancelled query is just run on the primary.
        # Any other database error (bad input, a bug) is not retried: it would fail the same way there.
        replica = connections[REPLICA]
        lost = replica.connection is None or not replica.is_usable()
        logger.warning("replica read failed (%s), reading from the primary", failure.__class__.__name__)
        if lost:
            replica_health.mark_unusable(f"failed ({failure.__class__.__name__})")
            _close_quietly()
        return handler(*args, **kwargs)

    return wrapper
