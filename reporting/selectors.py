"""The financial report (SPEC §10): read-only aggregation in SQL over the facts the owners write.

Facts:
- `invoices.PaymentApplication`: one row per succeeded payment, written by `invoice_apply_payment` in the
  payment's transaction: merchant, mode, gateway, currency, `paid_at` (the payment's success time), the gross
  `amount_minor` (what the customer paid, overpayment included) and the `tax_minor` / `fee_minor` it carries.
- `invoices.PaymentApplicationTax`: the same payment's taxable base and tax per tax rate (they add up exactly to
  the application's `taxable_minor` / `tax_minor`).
- `payments.Refund`: money given back on a payment (SPEC §13), chargebacks included; its `status` and `succeeded_at`
  (when the gateway paid it out). The gateway is its payment's (a join on the payment's primary key).

Rules (docs/adr/0040-financial-report.md, refunds: docs/adr/0049-ledger-verification-and-refunds-by-payout.md):
- A payment is in the period when it succeeded in [start, end).
- A refund is in the period when it SUCCEEDED (was paid out) in [start, end), whenever its payment was made: a
  period's refunds are the money that went back in it, like a bank statement, and a closed period never changes.
  Pending and failed refunds are in no period. The ledger's `refund_succeeded` / `chargeback` movements carry the
  same time (occurred_at = the refund's succeeded_at), so `manage.py verify_ledger` finds ledger and report equal.
- net to merchant = gross − service fees − refunds.
- Every figure is per currency. Figures of different currencies are never added: the only sums done outside SQL
  are of gateway lines of one currency into that currency's line.

Each aggregate is one GROUP BY over an index whose INCLUDE columns hold every summed column, so PostgreSQL answers
with an index-only scan of the tenant's slice of the period (see bench/report_bench.py); the refunds' gateway costs
one payment primary-key probe per refund of the period (refunds are a small fraction of payments).

Whole UTC days of a period are read from the daily rollup of those facts instead (invoices.CollectedDay /
CollectedDayTax, payments.RefundDay: written in the facts' own transactions, docs/adr/0040), the parts of days cut
by start/end from the facts as above; the result is the same to the minor unit (`from_facts=True` recomputes it
from the facts alone; tests/reporting/test_report_rollup.py, `manage.py report_rollup`).

`applications_in` and `refunds_paid_out_in` are the two rules (which rows, by which time); the report and
`report_figures_by_tenant` (verify_ledger's comparison, every tenant at once) both aggregate them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate

from invoices.models import CollectedDay, CollectedDayTax, PaymentApplication, PaymentApplicationTax
from merchants.models import Merchant
from payments.models import Payment, Refund, RefundDay
from paytrust.errors import ValidationError
from webhooks.inbound.selectors import inbound_events_failed
from webhooks.outbound.models import Delivery, DeliveryStatus


@dataclass(frozen=True)
class Figures:
    """One line of the report, in minor units of one currency."""

    payments_count: int = 0
    gross_minor: int = 0
    tax_minor: int = 0
    fee_minor: int = 0
    refunds_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.fee_minor - self.refunds_minor

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            payments_count=self.payments_count + other.payments_count,
            gross_minor=self.gross_minor + other.gross_minor,
            tax_minor=self.tax_minor + other.tax_minor,
            fee_minor=self.fee_minor + other.fee_minor,
            refunds_minor=self.refunds_minor + other.refunds_minor,
        )


@dataclass(frozen=True)
class GatewayLine:
    gateway: str
    figures: Figures


@dataclass(frozen=True)
class TaxRateLine:
    tax_rate: Decimal
    taxable_minor: int
    tax_minor: int


@dataclass(frozen=True)
class CurrencyReport:
    currency: str
    figures: Figures
    by_gateway: list[GatewayLine] = field(default_factory=list)
    by_tax_rate: list[TaxRateLine] = field(default_factory=list)


@dataclass(frozen=True)
class FinancialReport:
    start: datetime
    end: datetime
    currencies: list[CurrencyReport]


def report_period_check(*, start: datetime, end: datetime) -> None:
    """400 unless start < end and the span is at most settings.REPORT_MAX_DAYS days (`param` "end")."""
    if end <= start:
        raise ValidationError("end must be after start.", code="parameter_invalid", param="end")
    if end - start > timedelta(days=settings.REPORT_MAX_DAYS):
        raise ValidationError(
            f"The period may span at most {settings.REPORT_MAX_DAYS} days.",
            code="report_period_too_long",
            param="end",
        )


def report_default_period(now: datetime) -> tuple[datetime, datetime]:
    """The current calendar month in UTC: [1st of the month, 1st of the next month)."""
    now = now.astimezone(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _filters(
    *,
    merchant_id: str | None,
    mode: str | None,
    start: datetime | None,
    end: datetime | None,
    currency: str | None,
    time_field: str,
) -> dict:
    """None means "any" (verify_ledger reads every tenant and all time; the report always gives a period)."""
    filters: dict = {}
    if mode is not None:
        filters["mode"] = mode
    if start is not None:
        filters[f"{time_field}__gte"] = start
    if end is not None:
        filters[f"{time_field}__lt"] = end
    if merchant_id is not None:
        filters["merchant_id"] = merchant_id
    if currency:
        filters["currency"] = currency
    return filters


def applications_in(
    *,
    merchant_id: str | None,
    mode: str | None,
    start: datetime | None,
    end: datetime | None,
    currency: str | None = None,
    gateway: str | None = None,
) -> QuerySet:
    """The payments of a period: their PaymentApplication facts, by the payment's success time (`paid_at`)."""
    filters = _filters(
        merchant_id=merchant_id, mode=mode, start=start, end=end, currency=currency, time_field="paid_at"
    )
    if gateway:
        filters["gateway"] = gateway
    return PaymentApplication.objects.filter(**filters).order_by()


def refunds_paid_out_in(
    *,
    merchant_id: str | None,
    mode: str | None,
    start: datetime | None,
    end: datetime | None,
    currency: str | None = None,
    gateway: str | None = None,
) -> QuerySet:
    """The refunds of a period: those that succeeded (were paid out) in it, chargebacks included, by their own
    success time. Index `refund_report` (partial: succeeded refunds only)."""
    filters = _filters(
        merchant_id=merchant_id, mode=mode, start=start, end=end, currency=currency, time_field="succeeded_at"
    )
    if gateway:
        filters["payment__gateway"] = gateway
    return Refund.objects.filter(status="succeeded", **filters).order_by()


def _day_split(
    start: datetime, end: datetime
) -> tuple[date | None, date | None, list[tuple[datetime, datetime]]]:
    """[start, end) as whole UTC days [first, last) (None, None when it holds none) and the edges around them, the
    partial days the rollup cannot answer: [start, first 00:00) and [last 00:00, end)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    first = midnight if midnight == start else midnight + timedelta(days=1)
    last = datetime(end.year, end.month, end.day, tzinfo=UTC)
    if first >= last:
        return None, None, [(start, end)]
    edges = [edge for edge in ((start, first), (last, end)) if edge[0] < edge[1]]
    return first.date(), last.date(), edges


def _rollup_filters(scope: dict, first: date, last: date) -> dict:
    filters = {"mode": scope["mode"], "day__gte": first, "day__lt": last}
    for name in ("merchant_id", "currency", "gateway"):
        if scope[name]:
            filters[name] = scope[name]
    return filters


def _whole_days_and_edges(scope: dict, split, rollup, facts) -> list[dict]:
    """The rows of a period split by `_day_split`: `rollup(filters)` for its whole days (when it has any), then
    `facts(edge_scope)` for each cut edge (`scope` with that edge's start and end)."""
    first, last, edges = split
    rows: list[dict] = list(rollup(_rollup_filters(scope, first, last))) if first is not None else []
    for edge_start, edge_end in edges:
        rows += facts({**scope, "start": edge_start, "end": edge_end})
    return rows


def _collected_rows(scope: dict, split) -> list[dict]:
    """(currency, gateway, n, gross, tax, fee) rows: the rollup's whole days, the facts of the edges."""
    return _whole_days_and_edges(
        scope,
        split,
        lambda filters: (
            CollectedDay.objects.filter(**filters)
            .values("currency", "gateway")
            .annotate(
                n=Sum("payments_count"), gross=Sum("gross_minor"), tax=Sum("tax_minor"), fee=Sum("fee_minor")
            )
            .order_by()
        ),
        lambda edge: (
            applications_in(**edge)
            .values("currency", "gateway")
            .annotate(n=Count("*"), gross=Sum("amount_minor"), tax=Sum("tax_minor"), fee=Sum("fee_minor"))
        ),
    )


def _refund_rows(scope: dict, split) -> list[dict]:
    """(currency, gateway, refunds) rows: the rollup's whole days, the refunds of the edges."""
    return _whole_days_and_edges(
        scope,
        split,
        lambda filters: (
            RefundDay.objects.filter(**filters)
            .values("currency", "gateway")
            .annotate(refunds=Sum("refunds_minor"))
            .order_by()
        ),
        lambda edge: (
            refunds_paid_out_in(**edge)
            .values("currency", gateway=F("payment__gateway"))
            .annotate(refunds=Sum("amount_minor"))
        ),
    )


def _edge_taxes(edge: dict):
    filters = _filters(**{k: v for k, v in edge.items() if k != "gateway"}, time_field="paid_at") | {
        "paid_at__gte": edge["start"],
        "paid_at__lt": edge["end"],
    }
    if edge["gateway"]:
        filters["gateway"] = edge["gateway"]
    return (
        PaymentApplicationTax.objects.filter(**filters)
        .order_by()
        .values("currency", "tax_rate")
        .annotate(taxable=Sum("taxable_minor"), tax=Sum("tax_minor"))
    )


def _tax_rows(scope: dict, split) -> list[dict]:
    """(currency, tax_rate, taxable, tax) rows: the rollup's whole days, the facts of the edges."""
    return _whole_days_and_edges(
        scope,
        split,
        lambda filters: (
            CollectedDayTax.objects.filter(**filters)
            .values("currency", "tax_rate")
            .annotate(taxable=Sum("taxable_minor"), tax=Sum("tax_minor"))
            .order_by()
        ),
        _edge_taxes,
    )


def financial_report(
    *,
    merchant: Merchant | None,
    mode: str,
    start: datetime,
    end: datetime,
    currency: str | None = None,
    gateway: str | None = None,
    from_facts: bool = False,
) -> FinancialReport:
    """The report for payments that succeeded in [start, end) in `mode`, for one merchant (None: every merchant,
    for finance staff), optionally one currency / gateway. Currencies (by code), gateways (by name) and tax rates
    (lowest first) are in a stable order; only currencies with payments or paid-out refunds in the period appear.
    The caller validates the period (`report_period_check`).

    Whole UTC days come from the daily rollup (invoices.CollectedDay / CollectedDayTax, payments.RefundDay,
    maintained in the facts' own transactions: docs/adr/0040), a day cut by start or end from the raw facts of
    that part of the day: three queries for a period of whole days, up to six more for cut edges. `from_facts`
    computes everything from the raw facts instead (the recomputation the rollup is checked against; benchmark)."""
    scope = {
        "merchant_id": merchant.pk if merchant is not None else None,
        "mode": mode,
        "start": start,
        "end": end,
        "currency": currency,
        "gateway": gateway,
    }
    split = (None, None, [(start, end)]) if from_facts else _day_split(start, end)

    lines: dict[tuple[str, str], Figures] = {}
    for row in _collected_rows(scope, split):
        key = (row["currency"], row["gateway"])
        lines[key] = lines.get(key, Figures()) + Figures(
            payments_count=int(row["n"]),
            gross_minor=int(row["gross"]),
            tax_minor=int(row["tax"]),
            fee_minor=int(row["fee"]),
        )
    for row in _refund_rows(scope, split):
        key = (row["currency"], row["gateway"])
        lines[key] = lines.get(key, Figures()) + Figures(refunds_minor=int(row["refunds"]))

    by_rate: dict[tuple[str, Decimal], tuple[int, int]] = {}
    for row in _tax_rows(scope, split):
        key = (row["currency"], row["tax_rate"])
        taxable, tax = by_rate.get(key, (0, 0))
        by_rate[key] = (taxable + int(row["taxable"]), tax + int(row["tax"]))
    rates: dict[str, list[TaxRateLine]] = defaultdict(list)
    for (code, rate), (taxable, tax) in sorted(by_rate.items()):
        rates[code].append(TaxRateLine(rate, taxable, tax))

    by_currency: dict[str, list[GatewayLine]] = defaultdict(list)
    for (code, gateway_name), figures in sorted(lines.items()):
        by_currency[code].append(GatewayLine(gateway_name, figures))
    currencies = []
    for code, gateway_lines in sorted(by_currency.items()):
        total = Figures()
        for line in gateway_lines:  # one currency only
            total = total + line.figures
        currencies.append(
            CurrencyReport(
                currency=code, figures=total, by_gateway=gateway_lines, by_tax_rate=rates.get(code, [])
            )
        )
    return FinancialReport(start=start, end=end, currencies=currencies)


def report_figures_by_tenant(
    *, merchant_id: str | None, start: datetime | None, end: datetime | None
) -> dict[tuple[str, str, str], Figures]:
    """The report's figures of [start, end) (None: unbounded) per (merchant id, mode, currency), every tenant in
    two GROUP BYs: the same rows by the same rules as `financial_report`, without its period limit (which guards
    the API, not this). For `reporting.ledger_check` (verify_ledger), which compares them with the ledger."""
    scope = {"merchant_id": merchant_id, "mode": None, "start": start, "end": end}
    figures: dict[tuple[str, str, str], Figures] = {}
    collected = (
        applications_in(**scope)
        .values("merchant_id", "mode", "currency")
        .annotate(n=Count("*"), gross=Sum("amount_minor"), tax=Sum("tax_minor"), fee=Sum("fee_minor"))
    )
    for row in collected:
        figures[(row["merchant_id"], row["mode"], row["currency"])] = Figures(
            payments_count=row["n"],
            gross_minor=int(row["gross"]),
            tax_minor=int(row["tax"]),
            fee_minor=int(row["fee"]),
        )
    refunded = (
        refunds_paid_out_in(**scope)
        .values("merchant_id", "mode", "currency")
        .annotate(refunds=Sum("amount_minor"))
    )
    for row in refunded:
        key = (row["merchant_id"], row["mode"], row["currency"])
        figures[key] = figures.get(key, Figures()) + Figures(refunds_minor=int(row["refunds"]))
    return figures


def daily_collected(
    *,
    merchant: Merchant | None,
    mode: str,
    start: datetime,
    end: datetime,
    currency: str | None = None,
    gateway: str | None = None,
) -> dict[str, list[tuple[date, int]]]:
    """Gross collected per UTC day, per currency: {currency: [(day, gross_minor), ...]} (days with payments only,
    in order). For the admin report's chart. Whole days from the rollup, cut days from the facts."""
    scope = {
        "merchant_id": merchant.pk if merchant is not None else None,
        "mode": mode,
        "start": start,
        "end": end,
        "currency": currency,
        "gateway": gateway,
    }
    rows = _whole_days_and_edges(
        scope,
        _day_split(start, end),
        lambda filters: (
            CollectedDay.objects.filter(**filters)
            .values("currency", "day")
            .annotate(gross=Sum("gross_minor"))
            .order_by()
        ),
        lambda edge: (
            applications_in(**edge)
            .annotate(day=TruncDate("paid_at", tzinfo=UTC))
            .order_by()
            .values("currency", "day")
            .annotate(gross=Sum("amount_minor"))
        ),
    )
    totals: dict[tuple[str, date], int] = defaultdict(int)
    for row in rows:
        totals[(row["currency"], row["day"])] += int(row["gross"])
    series: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for (code, day), gross in sorted(totals.items()):
        series[code].append((day, gross))
    return dict(series)


# ---- the back office's dashboard (reporting/dashboard.py) -------------------------------------------------------


def collected_per_currency(*, mode: str, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """Payments that succeeded in [start, end) in `mode`, every merchant: {currency: (count, gross_minor)}.
    Whole days from the rollup, cut days from the facts; never a sum across currencies."""
    scope = {"merchant_id": None, "mode": mode, "start": start, "end": end, "currency": None, "gateway": None}
    totals: dict[str, tuple[int, int]] = {}
    for row in _collected_rows(scope, _day_split(start, end)):
        count, gross = totals.get(row["currency"], (0, 0))
        totals[row["currency"]] = (count + int(row["n"]), gross + int(row["gross"]))
    return dict(sorted(totals.items()))


def payments_count_by_status(statuses: list[str]) -> dict[str, int]:
    """How many payments (every merchant and mode) are in each of `statuses`."""
    rows = Payment.objects.filter(status__in=statuses).order_by().values("status").annotate(n=Count("*"))
    counts = dict.fromkeys(statuses, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def payments_received_on_closed_invoices_count() -> int:
    """Payments whose money arrived on a void or expired invoice and is not refunded in full yet (every merchant
    and mode): finance staff's to-do."""
    return Payment.objects.filter(
        received_on_closed_invoice=True, amount_refunded_minor__lt=F("amount_received_minor")
    ).count()


def inbound_notifications_failed_count() -> int:
    return inbound_events_failed().count()


def outbound_deliveries_failed_count() -> int:
    return Delivery.objects.filter(status=DeliveryStatus.FAILED).count()
