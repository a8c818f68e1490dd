"""GET /v1/invoices and /v1/invoices/{id}: filters, cursor pagination, tenant isolation, query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from invoices.calc import InstallmentsIn, LineItemIn
from invoices.models import Invoice
from invoices.services import invoice_create_supplementary, invoice_mark_payment_initiated
from tests.factories import GatewayAccountFactory, make_api_key
from tests.invoices.factories import make_invoice

pytestmark = pytest.mark.django_db


def ids(response):
    return [row["id"] for row in response.json()["data"]]


def test_retrieve_returns_the_full_representation(api, merchant):
    invoice = make_invoice(merchant, installments=InstallmentsIn(count=2), metadata={"k": "v"})
    response = api.get(f"/v1/invoices/{invoice.id}")
    assert response.status_code == 200
    data = response.json()
    expected_keys = {
        "id", "status", "currency", "subtotal", "tax_total", "service_fee", "total", "amount_paid", "amount_due",
        "overpaid", "line_items", "installments", "gateway", "customer", "expires_at", "payment_initiated_at",
        "payments", "metadata", "parent_invoice", "supplementary_invoices", "created_at", "updated_at",
    }  # fmt: skip
    assert expected_keys <= set(data)
    assert data["total"] == "100000" and [i["amount"] for i in data["installments"]] == ["50000", "50000"]
    assert data["metadata"] == {"k": "v"}


def test_installments_endpoint(api, merchant):
    invoice = make_invoice(
        merchant,
        lines=[("A", 1, "100001", "0")],
        installments=InstallmentsIn(count=3),
        expires_in=timedelta(days=2),
    )
    response = api.get(f"/v1/invoices/{invoice.id}/installments")
    assert response.status_code == 200
    rows = response.json()["data"]
    first = invoice.expires_at.date()
    assert [r["amount"] for r in rows] == ["33333", "33333", "33335"]
    assert [r["due_date"] for r in rows] == [(first + timedelta(days=30 * i)).isoformat() for i in range(3)]
    assert rows[0] == {
        "number": 1,
        "amount": "33333",
        "tax_share": "0",
        "fee_share": "0",
        "due_date": first.isoformat(),
        "amount_paid": "0",
        "amount_due": "33333",
        "status": "unpaid",
        "paid_at": None,
    }


def test_custom_installment_amounts_and_due_dates_via_api(api):
    response = api.post(
        "/v1/invoices",
        {
            "currency": "USD",
            "line_items": [{"name": "A", "quantity": 1, "unit_price": "100.00"}],
            "installments": {
                "count": 3,
                "amounts": ["50.00", "30.00", "20.00"],
                "due_dates": ["2031-01-01", "2031-02-01", "2031-03-01"],
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    rows = response.json()["installments"]
    assert [(r["amount"], r["due_date"]) for r in rows] == [
        ("50.00", "2031-01-01"),
        ("30.00", "2031-02-01"),
        ("20.00", "2031-03-01"),
    ]


def test_cursor_pagination_over_250_invoices_has_no_duplicates_or_gaps(api, merchant):
    created = [make_invoice(merchant).id for _ in range(250)]
    seen, cursor, pages = [], None, 0
    while True:
        url = "/v1/invoices?limit=100" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).json()
        seen.extend(row["id"] for row in body["data"])
        pages += 1
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == set(created)
    stamps = dict(Invoice.objects.values_list("id", "created_at"))
    keys = [(stamps[i], i) for i in seen]
    assert keys == sorted(keys, reverse=True)  # newest first


def test_list_uses_a_constant_number_of_queries(api, merchant):
    for _ in range(3):
        make_invoice(
            merchant,
            installments=InstallmentsIn(count=2),
            lines=[("A", 1, "1000", "0"), ("B", 2, "500", "0.1")],
        )
    api.get("/v1/invoices")  # warm-up: the first request of a key verifies it (not what we measure)
    with CaptureQueriesContext(connection) as few:
        assert len(api.get("/v1/invoices").json()["data"]) == 3
    for _ in range(20):
        make_invoice(
            merchant,
            installments=InstallmentsIn(count=2),
            lines=[("A", 1, "1000", "0"), ("B", 2, "500", "0.1")],
        )
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/v1/invoices").json()["data"]) == 20
    assert len(many) == len(few)


def test_filters(api, merchant):
    xendit = GatewayAccountFactory(merchant=merchant, gateway="xendit")
    idr = make_invoice(merchant, external_id="ext-1")
    usd = make_invoice(merchant, currency="USD", lines=[("A", 1, "10.00", "0")], gateway=xendit.id)
    pending = make_invoice(merchant)
    invoice_mark_payment_initiated(invoice_id=pending.id)

    assert set(ids(api.get("/v1/invoices?currency=USD"))) == {usd.id}
    assert set(ids(api.get("/v1/invoices?gateway=xendit"))) == {usd.id}
    assert set(ids(api.get(f"/v1/invoices?gateway={xendit.id}"))) == {usd.id}
    assert set(ids(api.get("/v1/invoices?status=pending"))) == {pending.id}
    assert set(ids(api.get("/v1/invoices?status=draft"))) == {idr.id, usd.id}
    assert set(ids(api.get("/v1/invoices?external_id=ext-1"))) == {idr.id}

    Invoice.objects.filter(pk=idr.pk).update(created_at=timezone.now() - timedelta(days=3))
    cutoff = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert set(ids(api.get(f"/v1/invoices?created_lt={cutoff}"))) == {idr.id}
    assert set(ids(api.get(f"/v1/invoices?created_gte={cutoff}"))) == {usd.id, pending.id}


@pytest.mark.parametrize(
    "query,param",
    [("status=unknown", "status"), ("currency=XYZ", "currency"), ("created_gte=yesterday", "created_gte"),
     ("limit=0", "limit"), ("limit=101", "limit"), ("cursor=garbage!", "cursor")],
)  # fmt: skip
def test_bad_list_parameters_get_400(api, query, param):
    response = api.get(f"/v1/invoices?{query}")
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_overdue_invoice_reads_and_filters_as_expired(api, merchant):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    Invoice.objects.filter(pk=invoice.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1), lapses_at=timezone.now() - timedelta(minutes=1)
    )
    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "expired"
    assert ids(api.get("/v1/invoices?status=expired")) == [invoice.id]
    assert ids(api.get("/v1/invoices?status=draft")) == []
    invoice.refresh_from_db()
    assert invoice.status == "draft"  # reads compute; the job writes


# ---- tenant isolation ----


def test_another_merchants_invoice_is_404_everywhere(api, other_merchant):
    theirs = make_invoice(other_merchant)
    for method, path in [
        ("get", f"/v1/invoices/{theirs.id}"),
        ("patch", f"/v1/invoices/{theirs.id}"),
        ("post", f"/v1/invoices/{theirs.id}/void"),
        ("post", f"/v1/invoices/{theirs.id}/supplementary"),
        ("get", f"/v1/invoices/{theirs.id}/installments"),
        ("get", f"/v1/invoices/{theirs.id}/overpayment"),
    ]:
        body = (
            {"line_items": [{"name": "A", "quantity": 1, "unit_price": "1"}]}
            if "supplementary" in path
            else {}
        )
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code == 404, (method, path, response.json())
        assert response.json()["error"]["code"] == "resource_missing"
    assert ids(api.get("/v1/invoices")) == []
    theirs.refresh_from_db()
    assert theirs.status == "draft" and theirs.supplementary_invoices.count() == 0


def test_test_and_live_invoices_are_invisible_to_each_other(api, merchant, client_for):
    _, live_key = make_api_key(merchant, mode="live")
    live = client_for(live_key)
    GatewayAccountFactory(merchant=merchant, mode="live", gateway="xendit")
    test_invoice = make_invoice(merchant)
    response = live.post(
        "/v1/invoices",
        {
            "currency": "IDR",
            "gateway": "xendit",
            "line_items": [{"name": "A", "quantity": 1, "unit_price": "1000"}],
        },
        format="json",
    )
    assert response.status_code == 201
    live_id = response.json()["id"]
    assert ids(api.get("/v1/invoices")) == [test_invoice.id]
    assert ids(live.get("/v1/invoices")) == [live_id]
    assert live.get(f"/v1/invoices/{test_invoice.id}").status_code == 404
    assert api.get(f"/v1/invoices/{live_id}").status_code == 404
    assert live.post(f"/v1/invoices/{test_invoice.id}/void").status_code == 404


def test_supplementary_links_both_ways_on_read(api, merchant):
    parent = make_invoice(merchant)
    child = invoice_create_supplementary(
        merchant=merchant, mode="test", parent_id=parent.id, line_items=[LineItemIn("Extra", 1, "5000")]
    )
    assert api.get(f"/v1/invoices/{parent.id}").json()["supplementary_invoices"] == [child.id]
    assert api.get(f"/v1/invoices/{child.id}").json()["parent_invoice"] == parent.id


def test_unauthenticated_list_is_401(client):
    response = client.get("/v1/invoices")
    assert response.status_code == 401
