"""The finance staff's report page: /admin/reporting/financial/ (SPEC §10).

The same selector and the same rendering as the API (`reporting.selectors.financial_report`,
`reporting.render`), with filters (period, merchant - or all merchants -, mode, currency, gateway), a CSV download
and a chart of the amount collected per day per currency (inline SVG, rendered here). Reporting has no table: the
back-office admin site (reporting/admin_site.py, installed as the default admin site) serves this view at its
own URL and lists it in its index (app "Reporting"). Staff with the `reporting.view_financial_report` permission
(the finance and administrator roles, reporting/roles.py) may see it; superusers always.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import mark_safe

from gateways.models import GatewayName
from merchants.models import Merchant
from paytrust.errors import ValidationError
from paytrust.models import Mode
from paytrust.money import CURRENCIES, format_display, format_percent
from paytrust.params import QUERY_DATETIME_MAX, QUERY_DATETIME_MIN
from reporting.chart import daily_bar_chart, period_days
from reporting.render import currency_lines, report_csv, report_csv_filename
from reporting.selectors import (
    collected_per_currency,
    daily_collected,
    financial_report,
    report_default_period,
    report_period_check,
)

PERMISSION = "reporting.view_financial_report"
URL_NAME = "reporting_financial"


def can_view_reports(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(PERMISSION))


class ReportFilterForm(forms.Form):
    start = forms.DateField(label="From (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    # The API's parameter names (start/end); here they are dates and the end day is included.
    end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    merchant = forms.ModelChoiceField(
        queryset=Merchant.objects.order_by("name"), required=False, empty_label="All merchants"
    )
    mode = forms.ChoiceField(choices=Mode.choices, initial=Mode.LIVE)
    currency = forms.ChoiceField(
        choices=[("", "All currencies")] + [(c, c) for c in CURRENCIES], required=False
    )
    gateway = forms.ChoiceField(choices=[("", "All gateways")] + list(GatewayName.choices), required=False)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        for field in ("start", "end"):  # the day after `end` is computed: keep clear of the calendar's end
            if not (QUERY_DATETIME_MIN.date() <= data[field] <= QUERY_DATETIME_MAX.date()):
                self.add_error(
                    field,
                    f"Pick a date between {QUERY_DATETIME_MIN:%Y-%m-%d} and {QUERY_DATETIME_MAX:%Y-%m-%d}.",
                )
        if self.errors:
            return data
        start, end = self.period()
        try:
            report_period_check(start=start, end=end)
        except ValidationError as exc:
            self.add_error("end", exc.message)
        return data

    def period(self) -> tuple[datetime, datetime]:
        """[start date 00:00 UTC, the day after `end` 00:00 UTC)."""
        first, last = self.cleaned_data["start"], self.cleaned_data["end"]
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        return start, end


def _default_filters(now: datetime) -> dict:
    start, end = report_default_period(now)
    return {
        "start": start.date().isoformat(),
        "end": (end - timedelta(days=1)).date().isoformat(),
        "mode": "live",
    }


def _other_mode(mode: str | None) -> str:
    return Mode.TEST if mode == Mode.LIVE else Mode.LIVE


def _nothing_live(form: ReportFilterForm) -> bool:
    """Nothing collected live in the form's period, while test mode has payments."""
    start, end = form.period()
    if collected_per_currency(mode=Mode.LIVE, start=start, end=end):
        return False
    return bool(collected_per_currency(mode=Mode.TEST, start=start, end=end))


def financial_report_view(request):
    if not can_view_reports(request.user):
        raise PermissionDenied
    query = {key: value for key, value in request.GET.dict().items() if value}
    wants_csv = query.pop("format", "") == "csv"
    mode_chosen = "mode" in query
    if "start" not in query and "end" not in query:
        query = {**_default_filters(timezone.now()), **query}
    form = ReportFilterForm(query)
    mode_note = ""
    if not mode_chosen and form.is_valid() and _nothing_live(form):
        # Opened without a mode and nothing was collected live: show test mode, and say so.
        query = {**query, "mode": Mode.TEST}
        form = ReportFilterForm(query)
        mode_note = "No live payments in this period: showing test mode."
    context = {
        **admin.site.each_context(request),  # the back-office site (reporting.admin_site.BackOfficeSite)
        "title": "Financial report",
        "form": form,
        "currencies": [],
        "charts": [],
        "mode_note": mode_note,
        "other_mode_url": f"{request.path}?{urlencode({**query, 'mode': _other_mode(query.get('mode'))})}",
    }
    if form.is_valid():
        start, end = form.period()
        scope = {
            "merchant": form.cleaned_data["merchant"],
            "mode": form.cleaned_data["mode"],
            "start": start,
            "end": end,
            "currency": form.cleaned_data["currency"] or None,
            "gateway": form.cleaned_data["gateway"] or None,
        }
        report = financial_report(**scope)
        if wants_csv:
            response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{report_csv_filename(report)}"'
            return response
        days: list[date] = period_days(start.date(), (end - timedelta(days=1)).date())
        context.update(
            {
                "report": report,
                "currencies": currency_lines(report, format_display, format_percent),
                "charts": [
                    {
                        "currency": currency,
                        # built by reporting.chart from escaped values only
                        "svg": mark_safe(daily_bar_chart(currency=currency, days=days, values=dict(points))),  # noqa: S308
                    }
                    for currency, points in daily_collected(**scope).items()
                ],
                "csv_url": f"{request.path}?{urlencode({**query, 'format': 'csv'})}",
            }
        )
    return TemplateResponse(request, "reporting/financial_report.html", context)
