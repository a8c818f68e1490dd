"""The finance staff's report page /admin/reporting/financial/: same selector and figures as the API, filters,
CSV download, the per-day chart, and who may see it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from lxml import etree

from tests.factories import make_api_key
from tests.reporting.helpers import END, START, URL, q

pytestmark = pytest.mark.django_db

PAGE = "/admin/reporting/financial/"


def page_params(merchant=None, **extra) -> dict:
    params = {
        "start": START.date().isoformat(),
        "end": (END - timedelta(days=1)).date().isoformat(),  # inclusive: the same [START, END) as the API
        "mode": "test",
        **extra,
    }
    if merchant is not None:
        params["merchant"] = merchant.pk
    return params


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_page_shows_the_merchants_figures_for_staff(staff, merchant, payments):
    response = staff.get(PAGE, page_params(merchant))

    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        "IDR 1,744,099",  # gross
        "IDR 148,500",  # tax
        "IDR 45,600",  # fees
        "IDR 46,599",  # refunds
        "IDR 1,651,900",  # net
        "IDR 1,596,400",  # xendit net
        "IDR 1,350,000",  # taxable at 11 %
        "USD 153.90",
        "USD 149.37",
        "USD 117.61",
    ):
        assert text in html, text
    assert "Download CSV" in html
    assert "<td>11 %</td>" in html and "<td>0.11</td>" not in html  # tax rates as people read them


def test_page_chart_has_one_svg_per_currency_with_a_bar_per_day(staff, merchant, payments):
    html = staff.get(PAGE, page_params(merchant)).content.decode()

    assert html.count('class="daily-chart"') == 2
    assert html.count('<rect x="') == 2 * 7  # 7 days in the period, one bar each (empty days are 0 high)
    assert f"<title>{(START + timedelta(days=1)).date().isoformat()}: IDR 446,599</title>" in html
    assert f"<title>{START.date().isoformat()}: IDR 56,500</title>" in html
    assert f"<title>{(START + timedelta(days=5)).date().isoformat()}: IDR 0</title>" in html
    for svg in re.findall(
        r'<svg xmlns="http://www.w3.org/2000/svg" class="daily-chart".*?</svg>', html, re.S
    ):
        assert etree.fromstring(svg.encode()).tag == "{http://www.w3.org/2000/svg}svg"  # well-formed
    assert "<script" not in html.split('id="content-main"')[1]
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_page_csv_is_the_api_csv(staff, merchant, payments, client_for):
    api = client_for(make_api_key(merchant)[1])
    from_api = api.get(URL, q(format="csv"))
    from_page = staff.get(PAGE, page_params(merchant, format="csv"))

    assert from_page.status_code == 200
    assert from_page["Content-Type"] == "text/csv; charset=utf-8"
    assert from_page.content == from_api.content


def test_all_merchants_adds_merchants_per_currency_only(staff, payments):
    html = staff.get(PAGE, page_params()).content.decode()

    # ours 1744099 + the other merchant's 123456 + 13580 tax; USD unchanged
    assert "IDR 1,881,135" in html
    assert "USD 153.90" in html


def test_filters_narrow_the_figures(staff, merchant, payments):
    def report_part(**filters) -> str:
        html = staff.get(PAGE, page_params(merchant, **filters)).content.decode()
        return html.split('id="report-filters"')[1].split("</form>", 1)[1]

    html = report_part(currency="USD")
    assert "USD 153.90" in html and "IDR" not in html
    html = report_part(gateway="sandbox")
    assert "IDR 56,500" in html and "IDR 1,744,099" not in html and "USD" not in html
    assert 'id="report-empty"' in report_part(mode="live")


def test_period_errors_are_shown_on_the_form(staff, settings):
    response = staff.get(PAGE, {"start": "2026-02-01", "end": "2026-01-01", "mode": "test"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "end must be after start" in html and "Download CSV" not in html

    settings.REPORT_MAX_DAYS = 31
    html = staff.get(PAGE, {"start": "2026-01-01", "end": "2026-02-01", "mode": "test"}).content.decode()
    assert "at most 31 days" in html


def test_page_without_filters_shows_the_current_month_in_live_mode(staff):
    response = staff.get(PAGE)
    assert response.status_code == 200
    assert response.context["form"].cleaned_data["mode"] == "live"
    assert response.context["form"].cleaned_data["start"].day == 1


def test_admin_index_links_to_the_report(staff):
    html = staff.get("/admin/").content.decode()
    assert "Financial report" in html and PAGE in html


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_need_the_report_permission_not_merely_the_invoice_view(client):
    user = User.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_invoice", content_type__app_label="invoices")
    )
    client.force_login(user)
    assert client.get(PAGE).status_code == 403
    assert "Financial report" not in client.get("/admin/").content.decode()

    user.user_permissions.add(
        Permission.objects.get(codename="view_financial_report", content_type__app_label="reporting")
    )
    user = User.objects.get(pk=user.pk)  # fresh permission cache
    client.force_login(user)
    assert client.get(PAGE).status_code == 200
    assert "Financial report" in client.get("/admin/").content.decode()


@pytest.mark.parametrize(("start", "end"), [("9999-12-30", "9999-12-31"), ("0001-01-01", "2026-01-01")])
def test_dates_at_the_ends_of_the_calendar_are_a_form_error_not_a_500(staff, start, end):
    for extra in ({}, {"format": "csv"}):
        response = staff.get(PAGE, {**page_params(), "start": start, "end": end, **extra})
        assert response.status_code == 200
        assert b"Pick a date between" in response.content
