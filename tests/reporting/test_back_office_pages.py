"""What staff read in the back office: money with its currency and decimals (never minor units or raw JSON),
percentages, line numbers from 1, masked customer contacts for support, labels that say what things are, the
dashboard per currency, the branding, and the history an admin action leaves."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.db import transaction
from django.test import Client
from django.utils import timezone

from apikeys.models import AuditLog
from apikeys.services import Actor
from gateways.models import GatewayAccount
from gateways.services import merchant_onboard
from invoices.calc import CustomerIn, LineItemIn
from invoices.models import Invoice
from invoices.services import invoice_create
from payments.models import Payment
from payments.services import payment_initiate
from paytrust.money import format_display
from reporting.roles import staff_save
from tests.reporting.helpers import invoice, pay
from webhooks.outbound.services import event_record

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
EMAIL = "budi.santoso@example.com"


def sandbox_account_of(merchant) -> GatewayAccount:
    return GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="sandbox")


def login(role: str) -> Client:
    user = staff_save(
        username=role, email=f"{role}@paytrust.test", role=role, password=PASSWORD, actor=Actor.system()
    ).user
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def finance():
    return login("finance")


@pytest.fixture
def support():
    return login("support")


@pytest.fixture
def idr_invoice(merchant, sandbox_account):
    """IDR, 2 × 125,000 at 11 % + 25,000 at 0 %, fee 1 % + 500: subtotal 275,000, tax 27,500, fee 3,250,
    total 305,750 in 3 installments; the first one paid."""
    inv = invoice(
        merchant,
        sandbox_account,
        currency="IDR",
        lines=[("Kopi Gayo", 2, "125000", "0.11"), ("Ongkos kirim", 1, "25000", "0")],
        installments=3,
    )
    pay(inv, amount_minor=None, at=timezone.now())
    return Invoice.objects.get(pk=inv.pk)


@pytest.fixture
def usd_invoice(merchant, sandbox_account):
    """USD, 199.99 at 8.25 %: tax 16.50, total 216.49, paid in full."""
    inv = invoice(merchant, sandbox_account, currency="USD", lines=[("Widget", 1, "199.99", "0.0825")])
    pay(inv, amount_minor=None, at=timezone.now())
    return Invoice.objects.get(pk=inv.pk)


def hidden_inputs(page: str) -> dict:
    """A change page's hidden inputs (inline management forms), as a browser posts them."""
    data = {}
    for tag in re.findall(r"<input[^>]*>", page):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if attrs.get("type") == "hidden" and "name" in attrs and attrs["name"] != "csrfmiddlewaretoken":
            data[attrs["name"]] = attrs.get("value", "")
    return data


def html(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_invoice_list_shows_money_with_currency_and_decimals(finance, idr_invoice, usd_invoice):
    page = html(finance, "/admin/invoices/invoice/")

    assert "IDR 305,750" in page and "USD 216.49" in page
    assert format_display(idr_invoice.amount_paid_minor, "IDR") in page
    assert format_display(idr_invoice.amount_due_minor, "IDR") in page
    assert ">21649<" not in page and ">305750<" not in page


def test_long_merchant_names_are_cut_in_lists_with_the_full_name_on_hover(finance):
    long_name = "PT Sumber Rejeki Makmur Sentosa Abadi Jaya Nusantara"
    merchant = merchant_onboard(name=long_name)
    invoice(merchant, sandbox_account_of(merchant), currency="IDR", lines=[("Kopi", 1, "50000", "0")])

    page = html(finance, "/admin/invoices/invoice/")

    assert f'<span title="{long_name}">PT Sumber Rejeki Makmur…</span>' in page
    assert f">{long_name}<" not in page


def test_invoice_page_reads_like_money_not_like_the_database(finance, idr_invoice, usd_invoice):
    idr = html(finance, f"/admin/invoices/invoice/{quote(idr_invoice.pk)}/change/")
    usd = html(finance, f"/admin/invoices/invoice/{quote(usd_invoice.pk)}/change/")

    for text in ("IDR 305,750", "IDR 275,000", "IDR 27,500", "IDR 3,250", "IDR 250,000", "11 %", "0 %"):
        assert text in idr, text
    assert "1 % of the subtotal + IDR 500" in idr
    assert "USD 216.49" in usd and "USD 16.50" in usd and "8.25 %" in usd
    for page in (idr, usd):
        assert "minor" not in page.lower()
        assert '"amount":' not in page and '"count":' not in page  # allocations and plan are tables, not JSON
        assert "pt-small-table" in page
    lines = re.findall(r'<td class="field-line">\s*<p>(\d+)</p>', idr)
    assert lines == ["1", "2"]  # numbered from 1
    assert "equal share" in idr  # the plan: 3 installments, amounts computed
    assert "When the invoice expires if money is still due" in idr  # lapses at, explained


def test_payment_list_and_page_show_money_with_currency(finance, usd_invoice):
    payment = Payment.objects.get(invoice=usd_invoice)

    listing = html(finance, "/admin/payments/payment/")
    page = html(finance, f"/admin/payments/payment/{quote(payment.pk)}/change/")

    assert "USD 216.49" in listing and ">21649<" not in listing
    assert "USD 216.49" in page
    assert "Amount minor" not in page and "received minor" not in page.lower()  # (gateway call logs stay raw)


def test_payment_applications_are_money_too(finance, usd_invoice):
    listing = html(finance, "/admin/invoices/paymentapplication/")

    assert "USD 216.49" in listing and "USD 16.50" in listing


def _contact_invoice(merchant, sandbox_account) -> Invoice:
    return invoice_create(
        merchant=merchant,
        mode="test",
        currency="IDR",
        gateway=sandbox_account.id,
        line_items=[LineItemIn("Kopi", 1, "50000", "0")],
        customer=CustomerIn("", EMAIL, "+6281234567890"),
        expires_at=timezone.now() + timedelta(days=1),
    )


def test_support_sees_customer_contacts_masked_and_finance_in_full(
    support, finance, merchant, sandbox_account
):
    inv = _contact_invoice(merchant, sandbox_account)
    with transaction.atomic():
        event = event_record(
            merchant=merchant, mode="test", type="invoice.created", data={"customer": {"email": EMAIL}}
        )
    pages = [
        "/admin/invoices/invoice/",
        f"/admin/invoices/invoice/{quote(inv.pk)}/change/",
        f"/admin/webhooks/event/{quote(event.pk)}/change/",
    ]

    for url in pages:
        masked = html(support, url)
        assert EMAIL not in masked and "+6281234567890" not in masked, url
        assert "b•••@example.com" in masked, url
        assert EMAIL in html(finance, url), url
    assert "+62•••890" in html(support, pages[1])


def test_labels_say_what_things_are(finance):
    index = html(finance, "/admin/")

    for label in ("Inbound gateway notifications", "Outbound merchant events", "API keys"):
        assert label in index, label
    assert "Apikeys" not in index and "Api keys" not in index


def test_admin_void_leaves_an_audit_row_with_the_request_id_and_a_history_entry(
    finance, merchant, sandbox_account
):
    inv = invoice(merchant, sandbox_account, currency="IDR", lines=[("Kopi", 1, "50000", "0")])

    response = finance.post(
        "/admin/invoices/invoice/",
        {"action": "void_selected", "_selected_action": [inv.pk], "index": "0"},
        HTTP_X_REQUEST_ID="req_test_void_1",
    )

    assert response.status_code == 302
    audit_page = html(finance, "/admin/apikeys/auditlog/")
    assert f"invoices.void: {inv.pk}" in audit_page
    entry = LogEntry.objects.get(object_id=inv.pk)
    assert entry.user.username == "finance" and "Voided" in entry.get_change_message()
    history = html(finance, f"/admin/invoices/invoice/{quote(inv.pk)}/history/")
    assert "Voided" in history
    row = AuditLog.objects.get(details__action_name="invoices.void")
    assert (row.actor, row.request_id, row.details["invoices"]) == (
        "user:finance",
        "req_test_void_1",
        [inv.pk],
    )


def test_saving_an_unchanged_draft_writes_no_history(finance, merchant, sandbox_account):
    inv = invoice(merchant, sandbox_account, currency="IDR", lines=[("Kopi", 1, "50000", "0")])
    url = f"/admin/invoices/invoice/{quote(inv.pk)}/change/"
    data = {
        **hidden_inputs(html(finance, url)),
        "description": inv.description,
        "customer_name": inv.customer_name,
        "customer_email": inv.customer_email,
        "customer_phone": inv.customer_phone,
        "expires_at_0": inv.expires_at.strftime("%Y-%m-%d"),
        "expires_at_1": inv.expires_at.strftime("%H:%M:%S"),
        "metadata": "{}",
    }

    response = finance.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not LogEntry.objects.filter(object_id=inv.pk).exists()


# ---- dashboard and branding -----------------------------------------------------------------------------------


def test_dashboard_shows_each_currency_collected_today_and_this_month_never_summed(
    finance, idr_invoice, usd_invoice
):
    first = Payment.objects.get(invoice=idr_invoice, status="succeeded")
    waiting = invoice(
        idr_invoice.merchant, idr_invoice.gateway_account, currency="IDR", lines=[("X", 1, "1000", "0")]
    )
    payment_initiate(merchant=waiting.merchant, mode="test", invoice_id=waiting.id)

    page = html(finance, "/admin/")

    assert "No live payments this month: showing test mode." in page
    idr_today = format_display(first.amount_received_minor, "IDR")
    assert page.count(idr_today) == 2  # today and this month
    assert page.count("USD 216.49") == 2
    # per currency only: no tile adds rupiah and dollars
    values = re.findall(r'<span class="pt-tile-value">([^<]+)</span>', page)
    assert all(v.startswith(("IDR ", "USD ")) or v.strip().isdigit() or v == "–" for v in values)
    assert "/admin/reporting/financial/?" in page and "mode=test" in page
    pending = Payment.objects.filter(status="pending").count()
    assert re.search(
        rf'href="/admin/payments/payment/\?status__exact=pending">\s*<span class="pt-tile-value">{pending}</span>',
        page,
    )
    for link in (
        "/admin/payments/payment/?status__exact=unknown",
        "/admin/inbound/inboundnotification/?status__exact=failed",
        "/admin/webhooks/delivery/?status__exact=failed",
    ):
        assert link in page
    assert "Payments received on closed invoices" in page


def test_dashboard_counts_payments_received_on_closed_invoices_still_to_refund(finance, usd_invoice):
    paid = Payment.objects.get(invoice=usd_invoice, status="succeeded")
    Payment.objects.filter(pk=paid.pk).update(received_on_closed_invoice=True)

    page = html(finance, "/admin/")

    assert re.search(
        r'href="/admin/payments/payment/\?received_on_closed_invoice__exact=1">\s*'
        r'<span class="pt-tile-value">1</span>\s*<span class="pt-tile-label">Payments received on closed invoices',
        page,
    )
    Payment.objects.filter(pk=paid.pk).update(
        amount_refunded_minor=paid.amount_received_minor
    )  # refunded in full
    assert re.search(
        r'<span class="pt-tile-value">0</span>\s*<span class="pt-tile-label">Payments received on closed invoices',
        html(finance, "/admin/"),
    )


def test_dashboard_money_is_for_staff_who_may_read_the_report(support, usd_invoice):
    page = html(support, "/admin/")

    assert "USD 216.49" not in page and "Collected" not in page
    assert "/admin/payments/payment/?status__exact=pending" in page  # support may read the lists


def test_branding_everywhere_and_the_favicon_is_served(finance, usd_invoice):
    anonymous = Client()
    pages = [
        anonymous.get("/admin/login/").content.decode(),
        html(finance, "/admin/"),
        html(finance, "/admin/invoices/invoice/"),
        html(finance, f"/admin/invoices/invoice/{quote(usd_invoice.pk)}/change/"),
        html(finance, "/admin/reporting/financial/"),
    ]

    for page in pages:
        assert "PayTrust back office" in page
        assert "Django administration" not in page and "Django site admin" not in page
        assert 'rel="icon"' in page and "backoffice/favicon.svg" in page
    favicon = anonymous.get("/static/backoffice/favicon.svg")
    assert favicon.status_code == 200 and b"<svg" in b"".join(favicon.streaming_content)


def test_the_report_opens_on_test_mode_when_nothing_was_collected_live_and_says_so(finance, usd_invoice):
    response = finance.get("/admin/reporting/financial/")

    html = response.content.decode()
    assert response.context["form"].cleaned_data["mode"] == "test"
    assert "No live payments in this period: showing test mode." in html and "USD 216.49" in html
    live = finance.get("/admin/reporting/financial/", {"mode": "live"}).content.decode()
    assert (
        "No live payments succeeded in this period." in live
        and "No live payments in this period:" not in live
    )


def test_invoice_statuses_read_as_words(finance, idr_invoice):
    listing = html(finance, "/admin/invoices/invoice/")
    detail = html(finance, f"/admin/invoices/invoice/{quote(idr_invoice.pk)}/change/")
    rows = listing.split("<tbody>")[1].split("</tbody>")[0]
    assert "Partially paid · test" in rows and "partially_paid" not in rows
    assert "Partially paid" in detail
