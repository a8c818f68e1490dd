"""The back office's dashboard, on the admin index (reporting/admin_site.py): what finance staff look at first.

- Money collected today and this month (UTC), per currency - never added across currencies - in live mode, or in
  test mode when nothing was collected live this month (said plainly, with a link to the other mode). Each figure
  links to the financial report of its period. Shown to staff who may read the report.
- What needs attention: payments waiting at the gateway (`pending`) or whose outcome is `unknown`, failed inbound
  gateway notifications, failed outbound deliveries - each a link to the filtered admin list, shown to staff who
  may view that list.
- Payments received on closed invoices (void, or paid after an expired invoice's lapse) not refunded in full yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse

from paytrust.models import Mode
from paytrust.money import format_display
from reporting import selectors
from reporting.admin import URL_NAME as REPORT_URL_NAME
from reporting.admin import can_view_reports


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    url: str
    detail: str = ""


@dataclass
class Dashboard:
    mode: str = Mode.LIVE
    other_mode: str = Mode.TEST
    mode_note: str = ""
    collected: list[tuple[str, list[Figure]]] = field(default_factory=list)  # (period label, per currency)
    attention: list[Figure] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.collected and not self.attention


def _report_url(site_name: str, *, mode: str, first: datetime, last: datetime) -> str:
    query = {"start": first.date().isoformat(), "end": last.date().isoformat(), "mode": mode}
    return f"{reverse(f'admin:{REPORT_URL_NAME}', current_app=site_name)}?{urlencode(query)}"


def _collected(dashboard: Dashboard, site_name: str, now: datetime, requested_mode: str | None) -> None:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    tomorrow = today + timedelta(days=1)
    mode = requested_mode if requested_mode in Mode.values else None
    if mode is None:
        mode = Mode.LIVE
        if not selectors.collected_per_currency(mode=Mode.LIVE, start=month, end=tomorrow):
            mode = Mode.TEST
            dashboard.mode_note = "No live payments this month: showing test mode."
    dashboard.mode = mode
    dashboard.other_mode = Mode.TEST if mode == Mode.LIVE else Mode.LIVE
    for label, start in (("Today", today), (f"{today:%B %Y}", month)):
        figures = [
            Figure(
                label=currency,
                value=format_display(gross, currency),
                detail=f"{count} payment{'s' if count != 1 else ''}",
                url=_report_url(site_name, mode=mode, first=start, last=today),
            )
            for currency, (count, gross) in selectors.collected_per_currency(
                mode=mode, start=start, end=tomorrow
            ).items()
        ]
        dashboard.collected.append((label, figures))


def _attention(dashboard: Dashboard, site_name: str, user) -> None:
    def url(name: str, **filters) -> str:
        return f"{reverse(f'admin:{name}', current_app=site_name)}?{urlencode(filters)}"

    if user.has_perm("payments.view_payment"):
        counts = selectors.payments_count_by_status(["pending", "unknown"])
        dashboard.attention += [
            Figure(
                "Payments waiting at the gateway",
                str(counts["pending"]),
                url("payments_payment_changelist", status__exact="pending"),
            ),
            Figure(
                "Payments with an unknown outcome",
                str(counts["unknown"]),
                url("payments_payment_changelist", status__exact="unknown"),
            ),
            Figure(
                "Payments received on closed invoices, to refund",
                str(selectors.payments_received_on_closed_invoices_count()),
                url("payments_payment_changelist", received_on_closed_invoice__exact="1"),
            ),
        ]
    if user.has_perm("inbound.view_inboundnotification"):
        dashboard.attention.append(
            Figure(
                "Failed inbound gateway notifications",
                str(selectors.inbound_notifications_failed_count()),
                url("inbound_inboundnotification_changelist", status__exact="failed"),
            )
        )
    if user.has_perm("webhooks.view_delivery"):
        dashboard.attention.append(
            Figure(
                "Failed outbound deliveries",
                str(selectors.outbound_deliveries_failed_count()),
                url("webhooks_delivery_changelist", status__exact="failed"),
            )
        )


def dashboard_for(user, *, site_name: str, now: datetime, mode: str | None = None) -> Dashboard:
    dashboard = Dashboard()
    if can_view_reports(user):
        _collected(dashboard, site_name, now, mode)
    _attention(dashboard, site_name, user)
    return dashboard
