"""`manage.py verify_ledger` and its daily job: the ledger's invariants (SPEC §13), checked set-based in SQL.

Each check is a function `(cursor, scope) -> list[Break]`; a Break names the invariant and the movement or object
(movement `txn_…`, payment `pay_…`, refund `ref_…`, or a tenant `mer_…/mode/CUR`). The invariants:

- `movement_unbalanced` / `movement_too_few_entries` / `entry_on_foreign_account` (a, b): a movement's entries sum
  to zero, it has at least two, and each is on an account of the movement's merchant, mode and currency;
  `tenant_unbalanced`: the same sum per merchant/mode/currency.
- `payment_posting` (c): every payment that received money has exactly one `payment` movement (at most one is
  the database's unique constraint `ledger_movement_once`, so only "none" is looked for; on its tenant, at its
  paid time) whose lines equal its PaymentApplication: Dr gateway_clearing gross, Cr tax_payable tax, Cr
  service_fees fee, Cr customer_credit overpaid, Cr merchant_payable the rest (payments/services/bookkeeping.py);
  `payment_movement_orphan`: every `payment` movement's payment exists and received money.
- `refund_posting` (d): a refund has one `refund` movement (a chargeback: one `chargeback` and no `refund`); a
  succeeded one also one `refund_succeeded` (not a chargeback), a failed one one `refund_failed` when it has a
  `refund` movement, any other status (pending) neither; every amount equals the refund's. Written on the status
  string only, so rows from before the refunds API (all `succeeded`) and its `pending` / `failed` both hold.
  `refund_movement_orphan`: every refund-caused movement's refund exists.
- `authorization_posting` (e): an `authorization` is followed (not preceded) by at most one `capture` /
  `authorization_release`, which releases the whole hold; a payment still `authorized` has its authorization and
  neither (status strings: works before and after `authorized` exists).
- `report_mismatch` (f): per merchant/mode/currency over [since, now): the ledger's gross (gateway_clearing debits
  of `payment` movements), tax, fees, payments, refunds (gateway_clearing credits of `refund_succeeded` +
  `chargeback`) and net = gross − fees − refunds equal the financial report's (reporting.selectors
  `report_figures_by_tenant`: the report's own rows and rules, every tenant at once, without the API's period
  limit). Reversals are not netted: a reversed payment shows as a mismatch, to be looked at.

How it stays fast on millions of movements: one pass over the entries builds a temporary per-movement table
(`ledger_check_lines`: the entries' sum, count, foreign lines and the pivot per account code; ON COMMIT DROP), and
every check is a GROUP BY / hash join / anti-join against it - never a query per movement. Everything runs in one
REPEATABLE READ transaction, so all checks see the same snapshot (a payment committed meanwhile cannot look
unposted). `--since` checks the movements that occurred since then AND every movement of the payments / refunds
created or succeeded since then (so a payment is never missing its movement because of where the boundary fell);
`--merchant` restricts everything to one merchant. Timings: bench/verify_ledger_bench.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from ledger.models import AccountCode
from reporting.selectors import Figures, report_figures_by_tenant

# The check's transaction only: big GROUP BYs and hash joins stay in memory; JIT compiling costs ~0.5 s per big
# query and wins nothing on these single passes (bench/README.md).
SESSION_SETTINGS = ("SET LOCAL work_mem = '128MB'", "SET LOCAL jit = off")
# Per check at most this many breaks are listed (a thoroughly broken ledger must not flood the output).
MAX_BREAKS_PER_CHECK = 10_000
CODES = [code.value for code in AccountCode]


@dataclass(frozen=True)
class Break:
    invariant: str
    object_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant} {self.object_id}: {self.detail}"

    def as_dict(self) -> dict:
        return {"invariant": self.invariant, "object": self.object_id, "detail": self.detail}


@dataclass(frozen=True)
class Scope:
    merchant_id: str | None = None
    since: datetime | None = None


@dataclass
class Result:
    breaks: list[Break] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.breaks


def _rows(cursor, sql: str, params: dict) -> list[dict]:
    cursor.execute(sql, params)
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _limited(rows: list[Break], invariant: str) -> list[Break]:
    if len(rows) > MAX_BREAKS_PER_CHECK:
        return [
            *rows[:MAX_BREAKS_PER_CHECK],
            Break(invariant, "-", f"more than {MAX_BREAKS_PER_CHECK} breaks; the rest not listed"),
        ]
    return rows


def _params(scope: Scope) -> dict:
    return {"merchant": scope.merchant_id, "since": scope.since, "limit": MAX_BREAKS_PER_CHECK + 1}


# ---- the per-movement lines (one pass over the entries) ---------------------------------------------------------


def _scope_where(scope: Scope) -> str:
    """The WHERE clause choosing the movements (alias m) to check: all of them, a merchant's, or since a time."""
    merchant = "AND {t}.merchant_id = %(merchant)s" if scope.merchant_id else ""
    if scope.since is None:
        return f"WHERE true {merchant.format(t='m')}"
    return f"""WHERE m.id IN (
        SELECT id FROM ledger_movement m WHERE m.occurred_at >= %(since)s {merchant.format(t="m")}
        UNION
        SELECT m.id FROM payments_payment p
          JOIN ledger_movement m ON m.source_type = 'payment' AND m.source_id = p.id
         WHERE (p.created_at >= %(since)s OR p.succeeded_at >= %(since)s) {merchant.format(t="p")}
        UNION
        SELECT m.id FROM payments_refund r
          JOIN ledger_movement m ON m.source_type = 'refund' AND m.source_id = r.id
         WHERE (r.created_at >= %(since)s OR r.succeeded_at >= %(since)s) {merchant.format(t="r")}
    )"""


def build_lines(cursor, scope: Scope) -> None:
    pivot = ",\n".join(
        f"COALESCE(SUM(e.amount_minor) FILTER (WHERE a.code = '{code}'), 0) AS {code}" for code in CODES
    )
    cursor.execute("DROP TABLE IF EXISTS ledger_check_lines")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE ledger_check_lines ON COMMIT DROP AS
        SELECT m.id, m.type, m.source_type, m.source_id, m.merchant_id, m.mode, m.currency, m.occurred_at,
               COALESCE(SUM(e.amount_minor), 0) AS total,
               COUNT(e.id) AS entries,
               COUNT(e.id) FILTER (
                   WHERE a.merchant_id <> m.merchant_id OR a.mode <> m.mode OR a.currency <> m.currency
               ) AS foreign_entries,
               {pivot}
          FROM ledger_movement m
          LEFT JOIN ledger_entry e ON e.movement_id = m.id
          LEFT JOIN ledger_account a ON a.id = e.account_id
         {_scope_where(scope)}
         GROUP BY m.id
        """,
        _params(scope),
    )
    cursor.execute("ANALYZE ledger_check_lines")


# ---- (a), (b) ---------------------------------------------------------------------------------------------------


def check_movements(cursor, scope: Scope) -> list[Break]:
    rows = _rows(
        cursor,
        "SELECT id, total, entries, foreign_entries FROM ledger_check_lines "
        "WHERE total <> 0 OR entries < 2 OR foreign_entries > 0 ORDER BY id LIMIT %(limit)s",
        _params(scope),
    )
    breaks = []
    for row in rows:
        if row["total"] != 0:
            breaks.append(Break("movement_unbalanced", row["id"], f"entries sum to {row['total']}"))
        if row["entries"] < 2:
            breaks.append(Break("movement_too_few_entries", row["id"], f"{row['entries']} entries"))
        if row["foreign_entries"]:
            breaks.append(
                Break(
                    "entry_on_foreign_account",
                    row["id"],
                    f"{row['foreign_entries']} entries on another merchant's, mode's or currency's account",
                )
            )
    return _limited(breaks, "movement")


def check_tenants(cursor, scope: Scope) -> list[Break]:
    """Debits = credits per merchant/mode/currency, summed by the ENTRIES' accounts (not the movements': an entry
    on a foreign account unbalances both tenants here). Without --since: every entry, per account from the index
    `ledger_entry_account` alone (account INCLUDE amount), then per tenant; with it: the entries of the movements
    checked."""
    if scope.since is None:
        merchant = "WHERE a.merchant_id = %(merchant)s" if scope.merchant_id else ""
        entries = f"""
            SELECT a.merchant_id, a.mode, a.currency, SUM(t.total) AS total
              FROM (SELECT account_id, SUM(amount_minor) AS total FROM ledger_entry GROUP BY account_id) t
              JOIN ledger_account a ON a.id = t.account_id {merchant}
             GROUP BY a.merchant_id, a.mode, a.currency
            HAVING SUM(t.total) <> 0"""
    else:
        entries = """
            SELECT a.merchant_id, a.mode, a.currency, SUM(e.amount_minor) AS total
              FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
             WHERE e.movement_id IN (SELECT id FROM ledger_check_lines)
             GROUP BY a.merchant_id, a.mode, a.currency
            HAVING SUM(e.amount_minor) <> 0"""
    rows = _rows(cursor, f"{entries} ORDER BY 1, 2, 3 LIMIT %(limit)s", _params(scope))
    return _limited(
        [
            Break(
                "tenant_unbalanced",
                f"{r['merchant_id']}/{r['mode']}/{r['currency']}",
                f"debits exceed credits by {r['total']}",
            )
            for r in rows
        ],
        "tenant_unbalanced",
    )


# ---- (c) payments -----------------------------------------------------------------------------------------------

_PAYMENT_PROBLEMS = """
    ARRAY_REMOVE(ARRAY[
        CASE WHEN pa.payment_id IS NULL THEN 'no PaymentApplication' END,
        CASE WHEN t.n IS NULL THEN 'no payment movement' END,
        CASE WHEN t.n IS NOT NULL AND (t.merchant_id, t.mode, t.currency) <> (p.merchant_id, p.mode, p.currency)
             THEN 'movement ' || t.id || ' on ' || t.merchant_id || '/' || t.mode || '/' || t.currency END,
        CASE WHEN t.n IS NOT NULL AND t.occurred_at <> pa.paid_at
             THEN 'movement ' || t.id || ' occurred at ' || t.occurred_at || ', paid at ' || pa.paid_at END,
        CASE WHEN t.gateway_clearing <> pa.amount_minor
             THEN 'gateway_clearing ' || t.gateway_clearing || ' <> gross ' || pa.amount_minor END,
        CASE WHEN -t.tax_payable <> pa.tax_minor
             THEN 'tax_payable ' || -t.tax_payable || ' <> tax ' || pa.tax_minor END,
        CASE WHEN -t.service_fees <> pa.fee_minor
             THEN 'service_fees ' || -t.service_fees || ' <> fee ' || pa.fee_minor END,
        CASE WHEN -t.customer_credit <> pa.overpaid_minor
             THEN 'customer_credit ' || -t.customer_credit || ' <> overpaid ' || pa.overpaid_minor END,
        CASE WHEN -t.merchant_payable <> pa.amount_minor - pa.tax_minor - pa.fee_minor - pa.overpaid_minor
             THEN 'merchant_payable ' || -t.merchant_payable || ' <> '
                  || (pa.amount_minor - pa.tax_minor - pa.fee_minor - pa.overpaid_minor) END,
        CASE WHEN t.other_lines <> 0 THEN 'lines on other accounts' END
    ], NULL)
"""


def check_payments(cursor, scope: Scope) -> list[Break]:
    merchant = "AND p.merchant_id = %(merchant)s" if scope.merchant_id else ""
    since = "AND (p.created_at >= %(since)s OR p.succeeded_at >= %(since)s)" if scope.since else ""
    others = " + ".join(
        f"ABS({code})"
        for code in CODES
        if code
        not in ("gateway_clearing", "tax_payable", "service_fees", "customer_credit", "merchant_payable")
    )
    rows = _rows(
        cursor,
        f"""
        WITH posted AS (
            SELECT source_id, 1 AS n, id, merchant_id, mode, currency,
                   occurred_at, gateway_clearing, tax_payable, service_fees, customer_credit, merchant_payable,
                   {others} AS other_lines
              FROM ledger_check_lines WHERE type = 'payment' AND source_type = 'payment'
        ), checked AS (
            SELECT p.id, {_PAYMENT_PROBLEMS} AS problems
              FROM payments_payment p
              LEFT JOIN invoices_paymentapplication pa ON pa.payment_id = p.id
              LEFT JOIN posted t ON t.source_id = p.id
             WHERE p.amount_received_minor > 0 {merchant} {since}
        )
        SELECT id, problems FROM checked WHERE cardinality(problems) > 0 ORDER BY id LIMIT %(limit)s
        """,
        _params(scope),
    )
    breaks = [Break("payment_posting", r["id"], "; ".join(r["problems"])) for r in rows]
    orphans = _rows(
        cursor,
        """
        SELECT t.id, t.source_type, t.source_id, p.id IS NULL AS missing
          FROM ledger_check_lines t
          LEFT JOIN payments_payment p ON p.id = t.source_id AND t.source_type = 'payment'
         WHERE t.type = 'payment' AND (p.id IS NULL OR p.amount_received_minor = 0)
         ORDER BY t.id LIMIT %(limit)s
        """,
        _params(scope),
    )
    breaks += [
        Break(
            "payment_movement_orphan",
            r["id"],
            f"its {r['source_type']} {r['source_id']} "
            + ("does not exist" if r["missing"] else "received no money"),
        )
        for r in orphans
    ]
    return _limited(breaks, "payment_posting")


# ---- (d) refunds ------------------------------------------------------------------------------------------------

_REFUND_PROBLEMS = """
    ARRAY_REMOVE(ARRAY[
        CASE WHEN COALESCE(n_refund, 0) <> (CASE WHEN r.chargeback THEN 0 ELSE 1 END)
             THEN COALESCE(n_refund, 0) || ' refund movements' END,
        CASE WHEN COALESCE(n_chargeback, 0) <> (CASE WHEN r.chargeback THEN 1 ELSE 0 END)
             THEN COALESCE(n_chargeback, 0) || ' chargeback movements' END,
        CASE WHEN COALESCE(n_succeeded, 0)
                  <> (CASE WHEN r.status = 'succeeded' AND NOT r.chargeback THEN 1 ELSE 0 END)
             THEN COALESCE(n_succeeded, 0) || ' refund_succeeded movements (status ' || r.status || ')' END,
        CASE WHEN COALESCE(n_failed, 0)
                  <> (CASE WHEN r.status = 'failed' AND COALESCE(n_refund, 0) > 0 THEN 1 ELSE 0 END)
             THEN COALESCE(n_failed, 0) || ' refund_failed movements (status ' || r.status || ')' END,
        CASE WHEN n_refund > 0 AND (refund_payable <> -r.amount_minor OR refund_drawn <> r.amount_minor)
             THEN 'refund movement ' || refund_payable || ' in flight, ' || refund_drawn || ' drawn <> '
                  || r.amount_minor END,
        CASE WHEN n_succeeded > 0 AND (succeeded_clearing <> -r.amount_minor OR succeeded_payable <> r.amount_minor)
             THEN 'refund_succeeded paid out ' || -succeeded_clearing || ' <> ' || r.amount_minor END,
        CASE WHEN n_chargeback > 0 AND (chargeback_clearing <> -r.amount_minor)
             THEN 'chargeback took ' || -chargeback_clearing || ' <> ' || r.amount_minor END,
        CASE WHEN n_failed > 0 AND failed_payable <> r.amount_minor
             THEN 'refund_failed gave back ' || failed_payable || ' <> ' || r.amount_minor END,
        CASE WHEN foreign_tenant THEN 'a movement on another merchant, mode or currency' END
    ], NULL)
"""


def check_refunds(cursor, scope: Scope) -> list[Break]:
    merchant = "AND r.merchant_id = %(merchant)s" if scope.merchant_id else ""
    since = "AND (r.created_at >= %(since)s OR r.succeeded_at >= %(since)s)" if scope.since else ""
    rows = _rows(
        cursor,
        f"""
        WITH moved AS (
            SELECT t.source_id,
                   COUNT(*) FILTER (WHERE t.type = 'refund') AS n_refund,
                   COUNT(*) FILTER (WHERE t.type = 'refund_succeeded') AS n_succeeded,
                   COUNT(*) FILTER (WHERE t.type = 'refund_failed') AS n_failed,
                   COUNT(*) FILTER (WHERE t.type = 'chargeback') AS n_chargeback,
                   SUM(t.refunds_payable) FILTER (WHERE t.type = 'refund') AS refund_payable,
                   SUM(t.customer_credit + t.merchant_payable) FILTER (WHERE t.type = 'refund') AS refund_drawn,
                   SUM(t.gateway_clearing) FILTER (WHERE t.type = 'refund_succeeded') AS succeeded_clearing,
                   SUM(t.refunds_payable) FILTER (WHERE t.type = 'refund_succeeded') AS succeeded_payable,
                   SUM(t.gateway_clearing) FILTER (WHERE t.type = 'chargeback') AS chargeback_clearing,
                   SUM(t.refunds_payable) FILTER (WHERE t.type = 'refund_failed') AS failed_payable,
                   MIN(t.merchant_id) AS merchant_id, MAX(t.merchant_id) AS merchant_id_2,
                   MIN(t.mode || '/' || t.currency) AS tenant, MAX(t.mode || '/' || t.currency) AS tenant_2
              FROM ledger_check_lines t WHERE t.source_type = 'refund'
             GROUP BY t.source_id
        ), checked AS (
            SELECT r.id, {_REFUND_PROBLEMS} AS problems
              FROM payments_refund r
              LEFT JOIN (
                  SELECT moved.*,
                         (merchant_id <> merchant_id_2 OR tenant <> tenant_2) AS split_tenant
                    FROM moved
              ) m ON m.source_id = r.id
              CROSS JOIN LATERAL (
                  SELECT COALESCE(m.split_tenant OR m.merchant_id <> r.merchant_id
                                  OR m.tenant <> r.mode || '/' || r.currency, false) AS foreign_tenant
              ) f
             WHERE true {merchant} {since}
        )
        SELECT id, problems FROM checked WHERE cardinality(problems) > 0 ORDER BY id LIMIT %(limit)s
        """,
        _params(scope),
    )
    breaks = [Break("refund_posting", r["id"], "; ".join(r["problems"])) for r in rows]
    orphans = _rows(
        cursor,
        """
        SELECT t.id, t.type, t.source_id FROM ledger_check_lines t
         WHERE t.type IN ('refund', 'refund_succeeded', 'refund_failed', 'chargeback')
           AND (t.source_type <> 'refund' OR NOT EXISTS (SELECT 1 FROM payments_refund r WHERE r.id = t.source_id))
         ORDER BY t.id LIMIT %(limit)s
        """,
        _params(scope),
    )
    breaks += [
        Break("refund_movement_orphan", r["id"], f"{r['type']} of {r['source_id']}, which is no refund")
        for r in orphans
    ]
    return _limited(breaks, "refund_posting")


# ---- (e) authorizations -----------------------------------------------------------------------------------------


def check_authorizations(cursor, scope: Scope) -> list[Break]:
    merchant = "AND p.merchant_id = %(merchant)s" if scope.merchant_id else ""
    since = "AND p.created_at >= %(since)s" if scope.since else ""
    rows = _rows(
        cursor,
        f"""
        WITH holds AS (
            SELECT source_id,
                   COUNT(*) FILTER (WHERE type = 'authorization') AS n_auth,
                   COUNT(*) FILTER (WHERE type IN ('capture', 'authorization_release')) AS n_closed,
                   MIN(occurred_at) FILTER (WHERE type = 'authorization') AS authorized_at,
                   MIN(occurred_at) FILTER (WHERE type IN ('capture', 'authorization_release')) AS closed_at,
                   SUM(gateway_authorized) AS held
              FROM ledger_check_lines
             WHERE source_type = 'payment' AND type IN ('authorization', 'capture', 'authorization_release')
             GROUP BY source_id
        ), authorized AS (
            SELECT p.id FROM payments_payment p WHERE p.status = 'authorized' {merchant} {since}
        ), checked AS (
            SELECT COALESCE(h.source_id, a.id) AS id,
                   ARRAY_REMOVE(ARRAY[
                       CASE WHEN p.id IS NULL THEN 'its payment does not exist' END,
                       CASE WHEN COALESCE(h.n_auth, 0) = 0 THEN 'no authorization movement' END,
                       CASE WHEN h.n_closed > 1 THEN 'captured or released ' || h.n_closed || ' times' END,
                       CASE WHEN h.closed_at < h.authorized_at THEN 'captured or released before authorized' END,
                       CASE WHEN h.n_closed = 1 AND h.held <> 0 THEN 'the release left ' || h.held || ' held' END,
                       CASE WHEN p.status = 'authorized' AND h.n_closed > 0
                            THEN 'still authorized, yet captured or released' END
                   ], NULL) AS problems
              FROM holds h
              FULL JOIN authorized a ON a.id = h.source_id
              LEFT JOIN payments_payment p ON p.id = COALESCE(h.source_id, a.id)
        )
        SELECT id, problems FROM checked WHERE cardinality(problems) > 0 ORDER BY id LIMIT %(limit)s
        """,
        _params(scope),
    )
    return _limited(
        [Break("authorization_posting", r["id"], "; ".join(r["problems"])) for r in rows],
        "authorization_posting",
    )


# ---- (f) the report ---------------------------------------------------------------------------------------------


def ledger_figures(cursor, scope: Scope, *, until: datetime) -> dict[tuple[str, str, str], Figures]:
    since = "AND occurred_at >= %(since)s" if scope.since else ""
    rows = _rows(
        cursor,
        f"""
        SELECT merchant_id, mode, currency,
               COUNT(*) FILTER (WHERE type = 'payment') AS payments,
               COALESCE(SUM(gateway_clearing) FILTER (WHERE type = 'payment'), 0) AS gross,
               COALESCE(-SUM(tax_payable) FILTER (WHERE type = 'payment'), 0) AS tax,
               COALESCE(-SUM(service_fees) FILTER (WHERE type = 'payment'), 0) AS fee,
               COALESCE(-SUM(gateway_clearing) FILTER (WHERE type IN ('refund_succeeded', 'chargeback')), 0)
                   AS refunds
          FROM ledger_check_lines
         WHERE type IN ('payment', 'refund_succeeded', 'chargeback') AND occurred_at < %(until)s {since}
         GROUP BY merchant_id, mode, currency
        """,
        {**_params(scope), "until": until},
    )
    return {
        (r["merchant_id"], r["mode"], r["currency"]): Figures(
            payments_count=r["payments"],
            gross_minor=int(r["gross"]),
            tax_minor=int(r["tax"]),
            fee_minor=int(r["fee"]),
            refunds_minor=int(r["refunds"]),
        )
        for r in rows
    }


def check_report(cursor, scope: Scope, *, until: datetime) -> list[Break]:
    ledger = ledger_figures(cursor, scope, until=until)
    report = report_figures_by_tenant(merchant_id=scope.merchant_id, start=scope.since, end=until)
    breaks = []
    for key in sorted(set(ledger) | set(report)):
        book, rep = ledger.get(key, Figures()), report.get(key, Figures())
        diffs = [
            f"{name} ledger {getattr(book, attr)} <> report {getattr(rep, attr)}"
            for name, attr in (
                ("payments", "payments_count"),
                ("gross", "gross_minor"),
                ("tax", "tax_minor"),
                ("fees", "fee_minor"),
                ("refunds", "refunds_minor"),
                ("net", "net_minor"),
            )
            if getattr(book, attr) != getattr(rep, attr)
        ]
        if diffs:
            breaks.append(Break("report_mismatch", "/".join(key), "; ".join(diffs)))
    return breaks


# ---- running them -----------------------------------------------------------------------------------------------


def _summary(cursor) -> dict:
    cursor.execute(
        "SELECT COUNT(*), COALESCE(SUM(entries), 0), COUNT(DISTINCT merchant_id), COUNT(DISTINCT currency) "
        "FROM ledger_check_lines"
    )
    movements, entries, merchants, currencies = cursor.fetchone()
    return {
        "movements": movements,
        "entries": int(entries),
        "merchants": merchants,
        "currencies": currencies,
    }


def ledger_check(*, merchant_id: str | None = None, since: datetime | None = None) -> Result:
    """Run every check on one snapshot of the database; writes nothing but its temporary table."""
    started = time.monotonic()
    scope = Scope(merchant_id=merchant_id, since=since)
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:  # else (tests, a caller's transaction) the snapshot is the caller's
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for setting in SESSION_SETTINGS:
            cursor.execute(setting)
        cursor.execute("SELECT now()")
        (until,) = cursor.fetchone()
        timings: dict[str, float] = {}
        breaks: list[Break] = []
        steps = [
            ("lines", lambda: build_lines(cursor, scope) or []),
            ("movements", lambda: check_movements(cursor, scope)),
            ("tenants", lambda: check_tenants(cursor, scope)),
            ("payments", lambda: check_payments(cursor, scope)),
            ("refunds", lambda: check_refunds(cursor, scope)),
            ("authorizations", lambda: check_authorizations(cursor, scope)),
            ("report", lambda: check_report(cursor, scope, until=until)),
        ]
        for name, step in steps:
            step_started = time.monotonic()
            breaks += step()
            timings[name] = round(time.monotonic() - step_started, 3)
        summary = _summary(cursor)
        cursor.execute("DROP TABLE ledger_check_lines")
    summary.update(
        breaks=len(breaks),
        seconds_per_step=timings,
        duration_seconds=round(time.monotonic() - started, 3),
        merchant=merchant_id,
        since=since.isoformat() if since else None,
        until=until.isoformat(),
    )
    return Result(breaks=breaks, summary=summary)
