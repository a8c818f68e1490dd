"""The financial report's daily rollup of refunds paid out (payments.RefundDay; docs/adr/0040), and the rebuild /
check of the whole rollup (this one and invoices.services.report_rollup's) for `manage.py report_rollup`.

`rollup_add_refund` is called where a refund becomes `succeeded` (refund_settlement.refund_mark_succeeded,
gateway_refunds._record_gateway_refund), under the payment's row lock and in the same transaction, with an
adding upsert (concurrent writers never lose an increment). A succeeded refund never changes again, so that is
the only change of the report's refund figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date

from django.db import connection, transaction

from invoices.services import report_rollup as collected
from payments.models import Payment, Refund

# pg_backend_pid() % 8 below: invoices.services.report_rollup.ROLLUP_SLOTS

_ADD_REFUND = """
INSERT INTO payments_refundday
    (merchant_id, mode, day, currency, gateway, slot, refunds_count, refunds_minor)
VALUES (%s, %s, %s, %s, %s, pg_backend_pid() %% 8, 1, %s)
ON CONFLICT ON CONSTRAINT refund_day_key DO UPDATE SET
    refunds_count = payments_refundday.refunds_count + EXCLUDED.refunds_count,
    refunds_minor = payments_refundday.refunds_minor + EXCLUDED.refunds_minor
"""

REBUILD_REFUNDS_SQL = """
INSERT INTO payments_refundday
    (merchant_id, mode, day, currency, gateway, slot, refunds_count, refunds_minor)
SELECT r.merchant_id, r.mode, (r.succeeded_at AT TIME ZONE 'UTC')::date, r.currency, p.gateway, 0,
       count(*), sum(r.amount_minor)
FROM payments_refund r JOIN payments_payment p ON p.id = r.payment_id
WHERE r.status = 'succeeded'
GROUP BY 1, 2, 3, 4, 5
"""
CHECK_REFUNDS_SQL = """
WITH facts AS (
    SELECT r.merchant_id, r.mode, (r.succeeded_at AT TIME ZONE 'UTC')::date AS day, r.currency, p.gateway,
           count(*) AS n, sum(r.amount_minor) AS refunds
    FROM payments_refund r JOIN payments_payment p ON p.id = r.payment_id
    WHERE r.status = 'succeeded' GROUP BY 1, 2, 3, 4, 5
), rollup AS (
    SELECT merchant_id, mode, day, currency, gateway, sum(refunds_count) AS n, sum(refunds_minor) AS refunds
    FROM payments_refundday GROUP BY 1, 2, 3, 4, 5
)
SELECT 'refunds', merchant_id, mode, day, currency, gateway,
       ARRAY[r.n, r.refunds]::bigint[], ARRAY[f.n, f.refunds]::bigint[]
FROM facts f FULL JOIN rollup r USING (merchant_id, mode, day, currency, gateway)
WHERE (r.n, r.refunds) IS DISTINCT FROM (f.n, f.refunds)
ORDER BY 2, 3, 4, 5, 6
"""
REBUILD_SQL = (collected.REBUILD_COLLECTED_SQL, collected.REBUILD_TAX_SQL, REBUILD_REFUNDS_SQL)
CHECK_SQL = (collected.CHECK_COLLECTED_SQL, collected.CHECK_TAX_SQL, CHECK_REFUNDS_SQL)
ROLLUP_TABLES = (*collected.ROLLUP_TABLES, "payments_refundday")


@dataclass(frozen=True)
class RollupDifference:
    """One key where the rollup and the facts differ; figures are None where one side has no row."""

    table: str
    merchant_id: str
    mode: str
    day: date
    currency: str
    key: str  # the gateway (and, for collected_tax, "gateway @ rate")
    rollup: list[int] | None  # None: no rollup row for the key
    facts: list[int] | None  # None: no fact for the key

    def __str__(self) -> str:
        return (
            f"{self.table} {self.merchant_id} {self.mode} {self.day} {self.currency} {self.key}: "
            f"rollup {self.rollup}, facts {self.facts}"
        )


def rollup_add_refund(*, payment: Payment, refund: Refund) -> None:
    """Add one refund that just succeeded to its day's rollup row (caller's transaction, payment locked)."""
    day = refund.succeeded_at.astimezone(UTC).date()
    with connection.cursor() as cursor:
        cursor.execute(
            _ADD_REFUND,
            [refund.merchant_id, refund.mode, day, refund.currency, payment.gateway, refund.amount_minor],
        )


def _differences(cursor) -> list[RollupDifference]:
    found = []
    for sql in CHECK_SQL:
        cursor.execute(sql)
        for *key, rollup, facts in cursor.fetchall():
            missing = [None] * len(rollup)  # a side without a row for the key: None, not [None, …]
            found.append(
                RollupDifference(
                    *key, None if rollup == missing else rollup, None if facts == missing else facts
                )
            )
    return found


def report_rollup_check() -> list[RollupDifference]:
    """Every key where the rollup differs from a recomputation from the facts, read in one snapshot (REPEATABLE
    READ: a fact and its increment commit together, so a consistent snapshot sees both or neither)."""
    outer = connection.in_atomic_block  # inside a caller's transaction: its snapshot rules
    with transaction.atomic(), connection.cursor() as cursor:
        if not outer:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _differences(cursor)


def report_rollup_rebuild() -> list[RollupDifference]:
    """Recompute the whole rollup from the facts; returns the differences found before (in the same transaction).

    The rollup tables are locked EXCLUSIVE first: writers that committed before are in the facts the rebuild
    reads (its statements' snapshots are taken after the lock); writers still open wait on their upsert and add
    their increment after the rebuild commits, to facts the rebuild did not see. Nothing is counted twice or lost.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(ROLLUP_TABLES)} IN EXCLUSIVE MODE")
        before = _differences(cursor)
        for table in ROLLUP_TABLES:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - constant table names
        for sql in REBUILD_SQL:
            cursor.execute(sql)
    return before
