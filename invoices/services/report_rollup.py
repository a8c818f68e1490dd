"""The financial report's daily rollup of collected money (invoices.CollectedDay / CollectedDayTax; docs/adr/0040).

`rollup_add_application` is called by `_record_application` right after it writes a PaymentApplication and its
PaymentApplicationTax rows, inside the same savepoint: the fact and its rollup increment commit or roll back
together. Each write is `INSERT … ON CONFLICT DO UPDATE SET x = x + EXCLUDED.x`, so two transactions adding to
the same day never lose an increment (the second waits for the first's row lock, then adds to the committed
value). The slot (backend pid modulo ROLLUP_SLOTS) spreads concurrent writers of one hot day over a few rows.

The rebuild SQL (also the backfill migration's and the benchmark's) recomputes the rollup from the facts into
slot 0; the check SQL lists every key where rollup and facts differ.
"""

from __future__ import annotations

from datetime import UTC

from django.db import connection

from invoices.models import PaymentApplication, PaymentApplicationTax

ROLLUP_SLOTS = 8  # written as the literal 8 in the SQL below

_ADD_COLLECTED = """
INSERT INTO invoices_collectedday
    (merchant_id, mode, day, currency, gateway, slot, payments_count, gross_minor, tax_minor, fee_minor)
VALUES (%s, %s, %s, %s, %s, pg_backend_pid() %% 8, 1, %s, %s, %s)
ON CONFLICT ON CONSTRAINT collected_day_key DO UPDATE SET
    payments_count = invoices_collectedday.payments_count + EXCLUDED.payments_count,
    gross_minor = invoices_collectedday.gross_minor + EXCLUDED.gross_minor,
    tax_minor = invoices_collectedday.tax_minor + EXCLUDED.tax_minor,
    fee_minor = invoices_collectedday.fee_minor + EXCLUDED.fee_minor
"""

_ADD_TAX = """
INSERT INTO invoices_collecteddaytax
    (merchant_id, mode, day, currency, gateway, tax_rate, slot, taxable_minor, tax_minor)
VALUES {values}
ON CONFLICT ON CONSTRAINT collected_day_tax_key DO UPDATE SET
    taxable_minor = invoices_collecteddaytax.taxable_minor + EXCLUDED.taxable_minor,
    tax_minor = invoices_collecteddaytax.tax_minor + EXCLUDED.tax_minor
"""
_TAX_ROW = "(%s, %s, %s, %s, %s, %s, pg_backend_pid() %% 8, %s, %s)"

# Recompute from the facts (slot 0). The tables must be empty (the rebuild deletes first, under a lock).
REBUILD_COLLECTED_SQL = """
INSERT INTO invoices_collectedday
    (merchant_id, mode, day, currency, gateway, slot, payments_count, gross_minor, tax_minor, fee_minor)
SELECT merchant_id, mode, (paid_at AT TIME ZONE 'UTC')::date, currency, gateway, 0,
       count(*), sum(amount_minor), sum(tax_minor), sum(fee_minor)
FROM invoices_paymentapplication
GROUP BY 1, 2, 3, 4, 5
"""
REBUILD_TAX_SQL = """
INSERT INTO invoices_collecteddaytax
    (merchant_id, mode, day, currency, gateway, tax_rate, slot, taxable_minor, tax_minor)
SELECT merchant_id, mode, (paid_at AT TIME ZONE 'UTC')::date, currency, gateway, tax_rate, 0,
       sum(taxable_minor), sum(tax_minor)
FROM invoices_paymentapplicationtax
GROUP BY 1, 2, 3, 4, 5, 6
"""

# Every key where the rollup (slots summed) and the facts differ: (table, key..., rollup figures, fact figures).
CHECK_COLLECTED_SQL = """
WITH facts AS (
    SELECT merchant_id, mode, (paid_at AT TIME ZONE 'UTC')::date AS day, currency, gateway,
           count(*) AS n, sum(amount_minor) AS gross, sum(tax_minor) AS tax, sum(fee_minor) AS fee
    FROM invoices_paymentapplication GROUP BY 1, 2, 3, 4, 5
), rollup AS (
    SELECT merchant_id, mode, day, currency, gateway,
           sum(payments_count) AS n, sum(gross_minor) AS gross, sum(tax_minor) AS tax, sum(fee_minor) AS fee
    FROM invoices_collectedday GROUP BY 1, 2, 3, 4, 5
)
SELECT 'collected', merchant_id, mode, day, currency, gateway,
       ARRAY[r.n, r.gross, r.tax, r.fee]::bigint[], ARRAY[f.n, f.gross, f.tax, f.fee]::bigint[]
FROM facts f FULL JOIN rollup r USING (merchant_id, mode, day, currency, gateway)
WHERE (r.n, r.gross, r.tax, r.fee) IS DISTINCT FROM (f.n, f.gross, f.tax, f.fee)
ORDER BY 2, 3, 4, 5, 6
"""
CHECK_TAX_SQL = """
WITH facts AS (
    SELECT merchant_id, mode, (paid_at AT TIME ZONE 'UTC')::date AS day, currency, gateway, tax_rate,
           sum(taxable_minor) AS taxable, sum(tax_minor) AS tax
    FROM invoices_paymentapplicationtax GROUP BY 1, 2, 3, 4, 5, 6
), rollup AS (
    SELECT merchant_id, mode, day, currency, gateway, tax_rate,
           sum(taxable_minor) AS taxable, sum(tax_minor) AS tax
    FROM invoices_collecteddaytax GROUP BY 1, 2, 3, 4, 5, 6
)
SELECT 'collected_tax', merchant_id, mode, day, currency, gateway || ' @ ' || tax_rate::text,
       ARRAY[r.taxable, r.tax]::bigint[], ARRAY[f.taxable, f.tax]::bigint[]
FROM facts f FULL JOIN rollup r USING (merchant_id, mode, day, currency, gateway, tax_rate)
WHERE (r.taxable, r.tax) IS DISTINCT FROM (f.taxable, f.tax)
ORDER BY 2, 3, 4, 5, 6
"""
ROLLUP_TABLES = ("invoices_collectedday", "invoices_collecteddaytax")


def rollup_add_application(*, application: PaymentApplication, taxes: list[PaymentApplicationTax]) -> None:
    """Add one payment's facts to its day's rollup rows (caller's transaction). Tax rows in rate order, so two
    writers lock the rows of one day in the same order."""
    day = application.paid_at.astimezone(UTC).date()
    key = [application.merchant_id, application.mode, day, application.currency, application.gateway]
    with connection.cursor() as cursor:
        cursor.execute(
            _ADD_COLLECTED, [*key, application.amount_minor, application.tax_minor, application.fee_minor]
        )
        rows = sorted(taxes, key=lambda row: row.tax_rate)
        if rows:
            values = ", ".join([_TAX_ROW] * len(rows))
            params = [v for row in rows for v in (*key, row.tax_rate, row.taxable_minor, row.tax_minor)]
            cursor.execute(_ADD_TAX.format(values=values), params)
