"""GET /v1/reports/financial: the financial report of the calling key's merchant and mode (SPEC §10), as JSON or,
with `?format=csv`, as CSV. Errors are always the JSON envelope."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from apikeys.viewsets import ApiViewSet, tenant
from gateways.models import GatewayName
from paytrust.db_routing import reads_from_replica
from paytrust.errors import ValidationError
from paytrust.money import CURRENCIES
from paytrust.params import query_choice, query_datetime
from paytrust.renderers import JSONRenderer
from paytrust.schema import QUERY_DATETIME_SCHEMA
from reporting.render import CSV_COLUMNS, report_csv, report_csv_filename, report_representation
from reporting.selectors import financial_report, report_default_period, report_period_check

PARAMS = ("start", "end", "currency", "gateway", "format")
FORMATS = ("json", "csv")
CSV = "text/csv"


class _JsonErrors(BaseContentNegotiation):
    """`format` is this endpoint's own parameter (json/csv), not DRF's renderer override: the CSV success body is
    a plain HttpResponse, anything DRF renders is JSON (the report or an error envelope)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


def parse_period(raw_start: str | None, raw_end: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """Both given: parsed and checked. Neither: the current UTC calendar month. Only one: 400 for the other."""
    if raw_start is None and raw_end is None:
        return report_default_period(now)
    start, end = query_datetime(raw_start, "start"), query_datetime(raw_end, "end")
    for value, param, other in ((start, "start", "end"), (end, "end", "start")):
        if value is None:
            raise ValidationError(
                f"{param} is required when {other} is given.", code="parameter_missing", param=param
            )
    report_period_check(start=start, end=end)
    return start, end


def parse_currency(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw not in CURRENCIES:
        raise ValidationError(f"Unknown currency {raw[:10]!r}.", code="currency_invalid", param="currency")
    return raw


# ---- schema (documentation of the JSON body) ----


class _FiguresOutput(serializers.Serializer):
    payments_count = serializers.IntegerField(help_text="Payments that succeeded in the period.")
    gross_collected = serializers.CharField(help_text="What customers paid (overpayments included).")
    tax_collected = serializers.CharField(help_text="Tax carried by those payments.")
    service_fees = serializers.CharField(help_text="Service fees carried by those payments.")
    net_to_merchant = serializers.CharField(help_text="gross_collected − service_fees − refunds.")
    refunds = serializers.CharField(
        help_text="Refunds paid out in the period (succeeded in [start, end), chargebacks included), whatever "
        "the payment's date."
    )


class _GatewayOutput(_FiguresOutput):
    gateway = serializers.ChoiceField(choices=GatewayName.values)


class _TaxRateOutput(serializers.Serializer):
    tax_rate = serializers.CharField(help_text='Fraction, e.g. "0.11".')
    taxable = serializers.CharField(help_text="Taxable base carried by the payments at this rate.")
    tax_collected = serializers.CharField()


class _CurrencyOutput(_FiguresOutput):
    currency = serializers.CharField()
    by_gateway = _GatewayOutput(many=True)
    by_tax_rate = _TaxRateOutput(many=True)


class FinancialReportOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    currencies = _CurrencyOutput(
        many=True, help_text="One entry per currency; figures are never summed across."
    )


# /v1/reports/…: read-only reports of the calling key's merchant and mode, one `@action` per report.
class ReportViewSet(ApiViewSet):
    content_negotiation_class = _JsonErrors

    @extend_schema(
        operation_id="reports_financial",
        summary="Financial report: collected, tax, fees, refunds, net - per currency",
        description=(
            "For the payments that succeeded in [start, end) (the calling key's merchant and mode): per currency, "
            "the number of payments, gross collected (what customers paid), tax and service fees carried by those "
            "payments (an installment's shares; partial payments the proportional floor, the completing payment "
            "the rest; overpaid money carries none), refunds paid out in the period (chargebacks included, "
            "whenever their payment was made), and net to merchant = "
            "gross − fees − refunds; broken down by gateway and by tax rate (taxable base and tax). Each currency "
            "stands alone: nothing is ever summed across currencies. Without start and end: the current calendar "
            "month (UTC). The span may be at most REPORT_MAX_DAYS (366) days. `format=csv` returns the same "
            "figures as text/csv, one row per currency, gateway and tax-rate line (`section` column)."
        ),
        parameters=[
            OpenApiParameter(
                "start",
                QUERY_DATETIME_SCHEMA,
                description="Inclusive. RFC 3339 date-time (no offset = UTC) or date (its midnight UTC). "
                "Required with end; both omitted = the current month. At most REPORT_MAX_DAYS before end.",
            ),
            OpenApiParameter(
                "end", QUERY_DATETIME_SCHEMA, description="Exclusive; after start. Same forms as start."
            ),
            OpenApiParameter(
                "currency",
                OpenApiTypes.STR,
                enum=list(CURRENCIES),
                description="Only this currency (ISO 4217 code).",
            ),
            OpenApiParameter(
                "gateway", OpenApiTypes.STR, enum=GatewayName.values, description="Only this gateway."
            ),
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=list(FORMATS), description="json (default) or csv."
            ),
        ],
        responses={
            200: FinancialReportOutput,
            (200, CSV): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="CSV with columns " + ", ".join(CSV_COLUMNS) + ".",
            ),
        },
        examples=[
            OpenApiExample(
                "One currency",
                response_only=True,
                value={
                    "start": "2026-11-01T00:00:00Z",
                    "end": "2026-12-01T00:00:00Z",
                    "currencies": [
                        {
                            "currency": "IDR",
                            "payments_count": 2,
                            "gross_collected": "446599",
                            "tax_collected": "33000",
                            "service_fees": "13600",
                            "net_to_merchant": "432999",
                            "refunds": "0",
                            "by_gateway": [
                                {
                                    "gateway": "xendit",
                                    "payments_count": 2,
                                    "gross_collected": "446599",
                                    "tax_collected": "33000",
                                    "service_fees": "13600",
                                    "net_to_merchant": "432999",
                                    "refunds": "0",
                                }
                            ],
                            "by_tax_rate": [
                                {"tax_rate": "0.0", "taxable": "99999", "tax_collected": "0"},
                                {"tax_rate": "0.11", "taxable": "300000", "tax_collected": "33000"},
                            ],
                        }
                    ],
                },
            )
        ],
        tags=["reports"],
    )
    @action(detail=False, methods=["get"])
    @reads_from_replica
    def financial(self, request):
        params = request.query_params
        for name in params:
            if name not in PARAMS:
                raise ValidationError(
                    f"Unknown parameter {name[:40]!r}; allowed: {', '.join(PARAMS)}.",
                    code="parameter_unknown",
                    param=name[:40],
                )
        output = query_choice(params.get("format"), "format", FORMATS) or "json"
        start, end = parse_period(params.get("start"), params.get("end"), now=timezone.now())
        report = financial_report(
            **tenant(request),
            start=start,
            end=end,
            currency=parse_currency(params.get("currency")),
            gateway=query_choice(params.get("gateway"), "gateway", GatewayName.values),
        )
        if output == "csv":
            response = HttpResponse(report_csv(report), content_type=f"{CSV}; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{report_csv_filename(report)}"'
            return response
        return Response(report_representation(report))
