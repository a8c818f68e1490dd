"""PATCH (draft edits + recompute), immutability after payment initiation (API, service, database), void,
supplementary invoices."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from invoices.calc import InstallmentsIn, LineItemIn
from invoices.models import Installment, Invoice, LineItem
from invoices.services import invoice_apply_payment, invoice_mark_payment_initiated, invoice_update
from paytrust.errors import Conflict
from tests.factories import GatewayAccountFactory
from tests.invoices.factories import account_with_fee, make_invoice

pytestmark = pytest.mark.django_db


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def snapshot(invoice_id):
    invoice = Invoice.objects.get(pk=invoice_id)
    row = model_to_dict(invoice)
    row["updated_at"] = invoice.updated_at
    lines = list(LineItem.objects.filter(invoice_id=invoice_id).order_by("position").values())
    installments = list(Installment.objects.filter(invoice_id=invoice_id).order_by("number").values())
    return row, lines, installments


# ---- draft edits ----


def test_patch_line_items_recomputes_totals_and_installments(api, merchant):
    account = account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.01", fixed_minor=500)
    invoice = make_invoice(merchant, gateway=account.id, installments=InstallmentsIn(count=2))
    # 3 × 20000 at 10 %: subtotal 60000, tax 6000, fee 600 + 500 = 1100, total 67100; halves 33550.
    response = api.patch(
        f"/v1/invoices/{invoice.id}",
        {"line_items": [{"name": "New", "quantity": 3, "unit_price": "20000", "tax_rate": "0.1"}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["subtotal"], data["tax_total"], data["service_fee"], data["total"]) == (
        "60000",
        "6000",
        "1100",
        "67100",
    )
    assert [i["amount"] for i in data["installments"]] == ["33550", "33550"]
    assert [i["tax_share"] for i in data["installments"]] == ["3000", "3000"]
    assert [line["name"] for line in data["line_items"]] == ["New"]
    assert LineItem.objects.filter(invoice=invoice).count() == 1


def test_patch_installments_adds_and_removes_a_plan(api, merchant):
    invoice = make_invoice(merchant)
    data = api.patch(f"/v1/invoices/{invoice.id}", {"installments": {"count": 4}}, format="json").json()
    assert [i["amount"] for i in data["installments"]] == ["25000"] * 4
    data = api.patch(f"/v1/invoices/{invoice.id}", {"installments": None}, format="json").json()
    assert [i["amount"] for i in data["installments"]] == ["100000"]


def test_patch_expiry_moves_default_due_dates(api, merchant):
    invoice = make_invoice(merchant, installments=InstallmentsIn(count=2))
    new_expiry = timezone.now() + timedelta(days=10)
    data = api.patch(f"/v1/invoices/{invoice.id}", {"expires_at": iso(new_expiry)}, format="json").json()
    first = new_expiry.date()
    assert [i["due_date"] for i in data["installments"]] == [
        first.isoformat(),
        (first + timedelta(days=30)).isoformat(),
    ]


def test_patch_currency_rereads_prices_in_the_new_currency(api, merchant):
    invoice = make_invoice(merchant, lines=[("A", 2, "1500", "0")])
    data = api.patch(f"/v1/invoices/{invoice.id}", {"currency": "USD"}, format="json").json()
    assert data["currency"] == "USD" and data["total"] == "3000.00"

    usd = make_invoice(merchant, currency="USD", lines=[("A", 1, "10.50", "0")])
    before = snapshot(usd.id)
    response = api.patch(f"/v1/invoices/{usd.id}", {"currency": "IDR"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "line_items.0.unit_price"
    assert snapshot(usd.id) == before


def test_patch_customer_description_metadata(api, merchant):
    invoice = make_invoice(merchant)
    data = api.patch(
        f"/v1/invoices/{invoice.id}",
        {"customer": {"email": "siti@example.com"}, "description": "March", "metadata": {"a": "b"}},
        format="json",
    ).json()
    assert data["customer"] == {"name": None, "email": "siti@example.com", "phone": None}
    assert (data["description"], data["metadata"]) == ("March", {"a": "b"})


@pytest.mark.parametrize(
    "body,param",
    [
        ({"line_items": [{"name": "A", "quantity": 0, "unit_price": "1"}]}, "line_items.0.quantity"),
        ({"line_items": []}, "line_items"),
        ({"installments": {"count": 13}}, "installments.count"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"gateway": "midtrans"}, "gateway"),
        ({"status": "paid"}, "status"),
        ({"total": "1"}, "total"),
    ],
)
def test_bad_patch_gets_400_and_changes_nothing(api, merchant, body, param):
    invoice = make_invoice(merchant, installments=InstallmentsIn(count=2))
    before = snapshot(invoice.id)
    response = api.patch(f"/v1/invoices/{invoice.id}", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert snapshot(invoice.id) == before


def test_patch_external_id_to_a_taken_one_gets_409(api, merchant):
    make_invoice(merchant, external_id="taken")
    invoice = make_invoice(merchant, external_id="mine")
    response = api.patch(f"/v1/invoices/{invoice.id}", {"external_id": "taken"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["param"] == "external_id"
    invoice.refresh_from_db()
    assert invoice.external_id == "mine"


# ---- immutability once a payment is initiated ----


IMMUTABLE_PATCHES = [
    {"line_items": [{"name": "Cheaper", "quantity": 1, "unit_price": "1"}]},
    {"currency": "USD"},
    {"gateway": "xendit"},
    {"installments": {"count": 2}},
    {"installments": None},
    {"expires_at": "2030-01-01T00:00:00Z"},
    {"customer": {"name": "Someone else"}},
    {"metadata": {"x": "y"}, "line_items": [{"name": "Cheaper", "quantity": 1, "unit_price": "1"}]},
]


@pytest.mark.parametrize("body", IMMUTABLE_PATCHES)
def test_after_initiation_changes_get_409_invoice_immutable_and_change_nothing(api, merchant, body):
    GatewayAccountFactory(merchant=merchant, gateway="xendit")
    invoice = make_invoice(merchant, installments=InstallmentsIn(count=3))
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    before = snapshot(invoice.id)
    response = api.patch(f"/v1/invoices/{invoice.id}", body, format="json")
    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == "invoice_immutable"
    assert snapshot(invoice.id) == before


def test_after_initiation_the_service_refuses_too(merchant):
    invoice = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    with pytest.raises(Conflict) as err:
        invoice_update(
            merchant=merchant, mode="test", invoice_id=invoice.id, line_items=[LineItemIn("X", 1, "1")]
        )
    assert err.value.code == "invoice_immutable" and err.value.status_code == 409


def test_after_initiation_metadata_can_still_change(api, merchant):
    invoice = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    response = api.patch(f"/v1/invoices/{invoice.id}", {"metadata": {"crm": "42"}}, format="json")
    assert response.status_code == 200 and response.json()["metadata"] == {"crm": "42"}
    assert response.json()["total"] == "100000"


def test_after_initiation_the_database_refuses_writes_that_bypass_the_service(merchant):
    invoice = make_invoice(merchant, installments=InstallmentsIn(count=2))
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    attempts = [
        lambda: Invoice.objects.filter(pk=invoice.pk).update(subtotal_minor=1, total_minor=1),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(currency="USD"),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(payment_initiated_at=None, status="draft"),
        lambda: LineItem.objects.filter(invoice=invoice).update(name="changed"),
        lambda: LineItem.objects.filter(invoice=invoice).delete(),
        lambda: LineItem.objects.create(
            invoice=invoice,
            position=5,
            name="x",
            quantity=1,
            unit_price_minor=1,
            tax_rate=0,
            subtotal_minor=1,
            tax_minor=0,
        ),
        lambda: Installment.objects.filter(invoice=invoice).update(amount_minor=1),
        lambda: Installment.objects.filter(invoice=invoice, number=2).delete(),
        lambda: Invoice.objects.filter(pk=invoice.pk).delete(),
    ]
    before = snapshot(invoice.id)
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="invoice_immutable"):
            with transaction.atomic():
                attempt()
    assert snapshot(invoice.id) == before
    # Payment progress is still writable (through the service).
    invoice_apply_payment(
        invoice_id=invoice.id,
        payment_id="pay_ok",
        amount_minor=50000,
        currency="IDR",
        installment_number=None,
        paid_at=timezone.now(),
        payments=[],
    )
    assert Installment.objects.get(invoice=invoice, number=1).status == "paid"


def test_draft_rows_are_writable_in_the_database(merchant):
    invoice = make_invoice(merchant)
    assert LineItem.objects.filter(invoice=invoice).update(name="fine") == 1


def test_expired_or_void_draft_cannot_be_edited(api, merchant):
    invoice = make_invoice(merchant)
    api.post(f"/v1/invoices/{invoice.id}/void")
    response = api.patch(f"/v1/invoices/{invoice.id}", {"description": "x"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "invoice_not_editable"


# ---- void ----


def test_void_a_draft(api, merchant, events):
    invoice = make_invoice(merchant)
    response = api.post(f"/v1/invoices/{invoice.id}/void")
    assert response.status_code == 200 and response.json()["status"] == "void"
    assert events[-1][0] == "invoice.voided"
    again = api.post(f"/v1/invoices/{invoice.id}/void")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invoice_not_voidable"


def test_void_a_pending_invoice(api, merchant):
    invoice = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    assert api.post(f"/v1/invoices/{invoice.id}/void").json()["status"] == "void"


def test_an_invoice_with_money_received_cannot_be_voided(api, merchant):
    invoice = make_invoice(merchant, installments=InstallmentsIn(count=2))
    invoice_mark_payment_initiated(invoice_id=invoice.id)
    invoice_apply_payment(
        invoice_id=invoice.id,
        payment_id="p1",
        amount_minor=1,
        currency="IDR",
        installment_number=None,
        paid_at=timezone.now(),
        payments=[],
    )
    response = api.post(f"/v1/invoices/{invoice.id}/void")
    assert response.status_code == 409
    invoice.refresh_from_db()
    assert invoice.status == "partially_paid"


# ---- supplementary ----


def test_supplementary_invoice_inherits_and_links_both_ways(api, merchant, events):
    account = account_with_fee(merchant, gateway="xendit", currency="USD", percent="0", fixed_minor=25)
    parent = make_invoice(
        merchant, currency="USD", gateway=account.id, lines=[("Plan", 1, "100.00", "0")], external_id="p-1"
    )
    invoice_mark_payment_initiated(invoice_id=parent.id)
    response = api.post(
        f"/v1/invoices/{parent.id}/supplementary",
        {"line_items": [{"name": "Extra seat", "quantity": 2, "unit_price": "10.00", "tax_rate": "0.1"}]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    child = response.json()
    assert child["parent_invoice"] == parent.id
    assert (child["currency"], child["gateway"], child["gateway_account"]) == ("USD", "xendit", account.id)
    assert child["customer"] == {"name": "Budi", "email": "budi@example.com", "phone": "+628123"}
    assert (child["subtotal"], child["tax_total"], child["service_fee"], child["total"]) == (
        "20.00",
        "2.00",
        "0.25",
        "22.25",
    )
    assert api.get(f"/v1/invoices/{parent.id}").json()["supplementary_invoices"] == [child["id"]]
    assert events[-1][0] == "invoice.created" and events[-1][1]["parent_invoice"] == parent.id


@pytest.mark.parametrize(
    "extra,param",
    [
        ({"currency": "USD"}, "currency"),
        ({"customer": {"name": "Other"}}, "customer"),
        ({"gateway": "midtrans"}, "gateway"),
    ],
)
def test_supplementary_cannot_change_inherited_fields(api, merchant, extra, param):
    parent = make_invoice(merchant)
    body = {"line_items": [{"name": "A", "quantity": 1, "unit_price": "1000"}], **extra}
    response = api.post(f"/v1/invoices/{parent.id}/supplementary", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert Invoice.objects.count() == 1


def test_supplementary_accepts_the_same_currency_spelled_out(api, merchant):
    parent = make_invoice(merchant)
    body = {"currency": "IDR", "line_items": [{"name": "A", "quantity": 1, "unit_price": "1000"}]}
    assert api.post(f"/v1/invoices/{parent.id}/supplementary", body, format="json").status_code == 201


def test_supplementary_of_a_void_invoice_gets_409(api, merchant):
    parent = make_invoice(merchant)
    api.post(f"/v1/invoices/{parent.id}/void")
    body = {"line_items": [{"name": "A", "quantity": 1, "unit_price": "1000"}]}
    response = api.post(f"/v1/invoices/{parent.id}/supplementary", body, format="json")
    assert response.status_code == 409


def test_supplementary_bad_input_gets_400_with_param(api, merchant):
    parent = make_invoice(merchant)
    body = {"line_items": [{"name": "A", "quantity": 1, "unit_price": "10.5"}]}
    response = api.post(f"/v1/invoices/{parent.id}/supplementary", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "line_items.0.unit_price"
    assert Invoice.objects.count() == 1
