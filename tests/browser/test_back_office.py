"""Issue 12, in a real browser at 1366×768: finance staff log in through the login form and read the dashboard, an
invoice paid in installments, the payment list and this month's financial report, void an invoice through the
admin action and find the audit row. Each page is written to .data/screenshots/<name>.png (git-ignored) for a
person to look at. The data is made through the real services (tests/browser/conftest.py says why before the
browser opens)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from apikeys.models import AuditLog
from apikeys.services import Actor
from gateways.models import GatewayAccount
from gateways.services import merchant_onboard
from invoices.models import Invoice
from reporting.roles import staff_save
from tests.reporting.helpers import invoice, pay

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@dataclass
class Scene:
    installments: Invoice  # IDR 4,500,000 in 3 installments of 1,500,000, the first paid
    usd: Invoice  # USD 216.49, paid
    open: Invoice  # IDR 277,500, nothing paid: to void


@pytest.fixture
def scene() -> Scene:
    merchant = merchant_onboard(name="PT Toko Kopi Nusantara Sejahtera Abadi")
    account = GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="sandbox")
    installments = invoice(
        merchant,
        account,
        currency="IDR",
        lines=[("Kursus bahasa Inggris", 1, "4000000", "0.12"), ("Buku latihan", 1, "20000", "0")],
        installments=3,
    )
    assert installments.total_minor == 4500000
    pay(installments, amount_minor=None, at=timezone.now())  # installment 1: IDR 1,500,000
    usd = invoice(merchant, account, currency="USD", lines=[("Widget", 1, "199.99", "0.0825")])
    pay(usd, amount_minor=None, at=timezone.now())
    open_invoice = invoice(merchant, account, currency="IDR", lines=[("Kopi Gayo", 2, "125000", "0.11")])
    staff_save(
        username="finance",
        email="finance@paytrust.test",
        role="finance",
        password=PASSWORD,
        actor=Actor.system(),
    )
    return Scene(
        installments=Invoice.objects.get(pk=installments.pk),
        usd=Invoice.objects.get(pk=usd.pk),
        open=Invoice.objects.get(pk=open_invoice.pk),
    )


@pytest.fixture
def office(scene, back_office):
    """The browser, logged in as `finance` through the login form (after `scene` made the data)."""
    back_office.open("/admin/login/")
    assert "PayTrust back office" in back_office.page.inner_text("#header")
    back_office.screenshot("login")
    back_office.log_in("finance", PASSWORD)
    return back_office


def texts(page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def rows_with(page, group: str, text: str) -> list[str]:
    """The visible table rows of an inline group that contain `text`."""
    rows = page.locator(f"{group} table tbody tr", has_text=text)
    return [rows.nth(i).inner_text() for i in range(rows.count()) if rows.nth(i).is_visible()]


def test_the_dashboard_shows_what_was_collected_per_currency_and_what_needs_attention(office):
    page = office.open("/admin/")

    assert page.title().endswith("PayTrust back office")
    assert "PayTrust back office" in page.inner_text("#site-name")
    content = page.inner_text("#content")
    assert "Django administration" not in page.content()
    assert "No live payments this month: showing test mode." in content
    tiles = texts(page, ".pt-tile-value")
    assert tiles.count("IDR 1,500,000") == 2 and tiles.count("USD 216.49") == 2  # today and this month
    assert "Payments waiting at the gateway" in content and "Failed outbound deliveries" in content
    office.screenshot("dashboard")
    office.assert_no_horizontal_scroll()


def test_an_invoice_in_installments_shows_its_plan_and_its_payment(office, scene):
    page = office.open(f"/admin/invoices/invoice/{scene.installments.pk}/change/")

    content = page.inner_text("#content")
    assert scene.installments.pk in content
    total, subtotal, tax, due = "IDR 4,500,000", "IDR 4,020,000", "IDR 480,000", "IDR 3,000,000"
    for money in (total, subtotal, tax, due):
        assert money in content, money
    assert "12 %" in content and "0 %" in content
    assert page.locator("#installments-group h2").inner_text().lower() == "installments"
    installments = rows_with(page, "#installments-group", "IDR 1,500,000")
    assert len(installments) == 3, installments  # 4,500,000 in three
    assert texts(page, "#installments-group td.field-status") == ["Paid", "Unpaid", "Unpaid"]
    payments = rows_with(page, "#payments-group", "pay_")
    assert len(payments) == 1 and "IDR 1,500,000" in payments[0] and "succeeded" in payments[0].lower()
    assert "minor" not in content.lower() and '"amount":' not in content
    office.screenshot("invoice_installments")
    office.assert_no_horizontal_scroll()


def test_the_payment_list_fits_the_screen_with_readable_money(office, scene):
    page = office.open("/admin/payments/payment/")

    rows = texts(page, "#result_list tbody tr")
    assert len(rows) == 2
    assert any("IDR 1,500,000" in row for row in rows) and any("USD 216.49" in row for row in rows)
    assert "1500000" not in page.inner_text("#result_list") and "21649" not in page.inner_text("#result_list")
    office.screenshot("payment_list")
    office.assert_no_horizontal_scroll()


def test_this_months_report_opens_from_the_dashboard(office):
    page = office.open("/admin/")
    month = f"{datetime.now(UTC):%B %Y}"
    page.locator(".pt-period", has_text=month).locator("a.pt-tile", has_text="IDR").click()
    page.wait_for_load_state()

    assert "/admin/reporting/financial/" in page.url
    first_of_month = datetime.now(UTC).replace(day=1).date().isoformat()
    assert page.input_value("#id_start") == first_of_month
    assert page.input_value("#id_mode") == "test"
    idr = page.inner_text("#currency-IDR")
    usd = page.inner_text("#currency-USD")
    assert "IDR 1,500,000" in idr and "IDR 160,000" in idr  # installment 1 and its tax share (480,000 / 3)
    assert "USD 216.49" in usd and "USD 16.50" in usd
    assert page.locator("#report-csv").is_visible()
    assert page.locator(".report-chart svg").count() == 2  # one chart per currency
    office.screenshot("financial_report")
    office.assert_no_horizontal_scroll()


def test_finance_voids_an_invoice_from_the_list_and_finds_the_audit_row(office, scene):
    page = office.open("/admin/invoices/invoice/")
    office.screenshot("invoice_list")
    office.assert_no_horizontal_scroll()

    page.check(f"input[name=_selected_action][value='{scene.open.pk}']")
    page.select_option("select[name=action]", "void_selected")
    page.click("button[name=index]")
    page.wait_for_load_state()

    assert "Voided 1 invoice(s)." in page.inner_text(".messagelist")
    row = page.locator("#result_list tbody tr", has_text=scene.open.pk).inner_text()
    assert "void" in row.lower()
    office.screenshot("invoice_list_after_void")

    page = office.open("/admin/apikeys/auditlog/")
    row = page.locator("#result_list tbody tr", has_text=f"invoices.void: {scene.open.pk}")
    assert row.count() == 1
    assert "user:finance" in row.inner_text()
    office.screenshot("audit_log")
    office.assert_no_horizontal_scroll()

    office.stop()
    assert Invoice.objects.get(pk=scene.open.pk).status == "void"
    audit = AuditLog.objects.get(details__action_name="invoices.void")
    assert audit.actor == "user:finance" and audit.details["invoices"] == [scene.open.pk]
    assert Invoice.objects.get(pk=scene.installments.pk).status != "void"
