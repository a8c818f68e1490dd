"""The finance staff's admin: list filters/search, formatted totals, draft edits through the service, read-only
after payment initiation, actions calling the services."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote

from invoices.calc import InstallmentsIn
from invoices.models import Invoice
from invoices.services import invoice_mark_payment_initiated
from tests.invoices.factories import account_with_fee, make_invoice

pytestmark = pytest.mark.django_db

LIST = "/admin/invoices/invoice/"


def change_url(invoice):
    return f"{LIST}{quote(invoice.pk)}/change/"


def form_data(client, invoice, **fields):
    """What the browser posts from the change page: its hidden inputs (inline management forms and row ids,
    whatever inlines are registered) plus the editable fields."""
    page = client.get(change_url(invoice)).content.decode()
    data = {}
    for tag in re.findall(r"<input[^>]*>", page):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if attrs.get("type") == "hidden" and "name" in attrs and attrs["name"] != "csrfmiddlewaretoken":
            data[attrs["name"]] = attrs.get("value", "")
    data.update(
        {
            "description": invoice.description,
            "customer_name": invoice.customer_name,
            "customer_email": invoice.customer_email,
            "customer_phone": invoice.customer_phone,
            "expires_at_0": invoice.expires_at.strftime("%Y-%m-%d"),
            "expires_at_1": invoice.expires_at.strftime("%H:%M:%S"),
            "metadata": "{}",
        }
    )
    data.update(fields)
    return data


def _errors(response):
    context = response.context
    if context is None or "adminform" not in context:
        return response.status_code
    return context["adminform"].form.errors, [
        (f.formset.errors, f.formset.non_form_errors()) for f in context["inline_admin_formsets"]
    ]


def test_list_shows_formatted_totals_and_filters_and_search_work(admin_client, merchant):
    account = account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.029", fixed_minor=2000)
    invoice = make_invoice(
        merchant,
        gateway=account.id,
        lines=[("Widget", 2, "150000", "0.11"), ("Gadget", 1, "99999", "0")],
        external_id="order-1001",
    )
    response = admin_client.get(LIST)
    assert response.status_code == 200
    assert "IDR 446,599" in response.content.decode()
    for query in (
        "status__exact=draft",
        "currency__exact=IDR",
        "gateway__exact=xendit",
        "q=budi@example.com",
        "q=order-1001",
        f"q={invoice.id}",
        f"created_at__year={invoice.created_at.year}",
    ):
        page = admin_client.get(f"{LIST}?{query}")
        assert page.status_code == 200 and invoice.id in page.content.decode(), query
    assert invoice.id not in admin_client.get(f"{LIST}?q=nobody@example.com").content.decode()


def test_detail_shows_line_items_and_installments(admin_client, merchant):
    invoice = make_invoice(
        merchant, lines=[("Widget", 1, "100001", "0")], installments=InstallmentsIn(count=2)
    )
    page = admin_client.get(change_url(invoice)).content.decode()
    assert "Widget" in page and "IDR 50,000" in page and "IDR 50,001" in page


def test_draft_edit_goes_through_the_service(admin_client, merchant):
    invoice = make_invoice(merchant)
    response = admin_client.post(
        change_url(invoice), form_data(admin_client, invoice, customer_email="siti@example.com")
    )
    assert response.status_code == 302, _errors(response)
    invoice.refresh_from_db()
    assert invoice.customer_email == "siti@example.com"


def test_draft_edit_that_the_service_refuses_shows_an_error_and_changes_nothing(admin_client, merchant):
    invoice = make_invoice(merchant)
    response = admin_client.post(
        change_url(invoice),
        form_data(admin_client, invoice, expires_at_0="2000-01-01", expires_at_1="00:00:00"),
    )
    assert response.status_code == 200
    assert "expires_at is in the past" in response.content.decode()
    fresh = Invoice.objects.get(pk=invoice.pk)
    assert fresh.expires_at == invoice.expires_at


def test_after_initiation_the_admin_is_read_only(admin_client, merchant):
    invoice = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    page = admin_client.get(change_url(invoice)).content.decode()
    assert 'name="customer_email"' not in page and 'name="description"' not in page
    response = admin_client.post(
        change_url(invoice), form_data(admin_client, invoice, customer_email="changed@example.com")
    )
    assert response.status_code == 403  # a view-only page: saving it is refused
    invoice.refresh_from_db()
    assert invoice.customer_email == "budi@example.com"
    assert not LogEntry.objects.filter(object_id=invoice.pk).exists()  # and leaves no "Changed" history


def test_no_add_or_delete_in_the_admin(admin_client, merchant):
    invoice = make_invoice(merchant)
    assert admin_client.get(f"{LIST}add/").status_code == 403
    assert admin_client.post(f"{LIST}{invoice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_void_action_calls_the_service(admin_client, merchant, events):
    draft = make_invoice(merchant)
    response = admin_client.post(LIST, {"action": "void_selected", "_selected_action": [draft.pk]})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "void" and draft.voided_at is not None
    assert events[-1][0] == "invoice.voided"
