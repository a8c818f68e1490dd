"""The financial report as the API's JSON object and as CSV (the same figures; used by the API and the admin).

Amounts are decimal strings with the currency's decimals (`paytrust.money.format_amount`), tax rates canonical
fraction strings (`format_rate`: "0.11"), times RFC 3339 UTC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from paytrust.money import format_amount, format_rate
from reporting.selectors import Figures, FinancialReport

AmountFormat = Callable[[int, str], str]  # (minor units, currency) -> text

CSV_COLUMNS = (
    "start",
    "end",
    "section",
    "currency",
    "gateway",
    "tax_rate",
    "payments_count",
    "gross_collected",
    "tax_collected",
    "service_fees",
    "net_to_merchant",
    "refunds",
    "taxable",
)
FIGURE_FIELDS = (
    "payments_count",
    "gross_collected",
    "tax_collected",
    "service_fees",
    "net_to_merchant",
    "refunds",
)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _figures(figures: Figures, currency: str, amount: AmountFormat) -> dict:
    return {
        "payments_count": figures.payments_count,
        "gross_collected": amount(figures.gross_minor, currency),
        "tax_collected": amount(figures.tax_minor, currency),
        "service_fees": amount(figures.fee_minor, currency),
        "net_to_merchant": amount(figures.net_minor, currency),
        "refunds": amount(figures.refunds_minor, currency),
    }


def currency_lines(
    report: FinancialReport,
    amount: AmountFormat = format_amount,
    rate_format: Callable[[Decimal], str] = format_rate,
) -> list[dict]:
    """The report's per-currency figures, amounts formatted by `amount` and tax rates by `rate_format` (the API's decimal
    strings by default; the admin page passes `format_display` and `format_percent`)."""
    return [
        {
            "currency": line.currency,
            **_figures(line.figures, line.currency, amount),
            "by_gateway": [
                {"gateway": gw.gateway, **_figures(gw.figures, line.currency, amount)}
                for gw in line.by_gateway
            ],
            "by_tax_rate": [
                {
                    "tax_rate": rate_format(rate.tax_rate),
                    "taxable": amount(rate.taxable_minor, line.currency),
                    "tax_collected": amount(rate.tax_minor, line.currency),
                }
                for rate in line.by_tax_rate
            ],
        }
        for line in report.currencies
    ]


def report_representation(report: FinancialReport) -> dict:
    return {"start": rfc3339(report.start), "end": rfc3339(report.end), "currencies": currency_lines(report)}


def report_csv_rows(report: FinancialReport) -> list[dict]:
    """One row per currency total, per gateway line and per tax-rate line, tagged by `section`."""
    data = report_representation(report)
    period = {"start": data["start"], "end": data["end"]}
    rows: list[dict] = []
    for line in data["currencies"]:
        currency = line["currency"]
        rows.append(
            {**period, "section": "currency", "currency": currency, **{k: line[k] for k in FIGURE_FIELDS}}
        )
        for gw in line["by_gateway"]:
            rows.append(
                {
                    **period,
                    "section": "gateway",
                    "currency": currency,
                    "gateway": gw["gateway"],
                    **{k: gw[k] for k in FIGURE_FIELDS},
                }
            )
        for rate in line["by_tax_rate"]:
            rows.append(
                {
                    **period,
                    "section": "tax_rate",
                    "currency": currency,
                    "tax_rate": rate["tax_rate"],
                    "tax_collected": rate["tax_collected"],
                    "taxable": rate["taxable"],
                }
            )
    return rows


def report_csv(report: FinancialReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(report_csv_rows(report))
    return buffer.getvalue()


def report_csv_filename(report: FinancialReport) -> str:
    def stamp(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return f"financial-report_{stamp(report.start)}_{stamp(report.end)}.csv"
