"""POST /v1/invoices: worked examples (numbers worked out by hand), response shape, bad input (400 + param,
nothing created), external_id uniqueness."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from invoices.models import Installment, Invoice, LineItem
from tests.factories import GatewayAccountFactory, make_api_key
from tests.invoices.factories import account_with_fee

pytestmark = pytest.mark.django_db


def body(**overrides):
    data = {
        "currency": "IDR",
        "gateway": "sandbox",
        "line_items": [{"name": "Widget", "quantity": 1, "unit_price": "100000", "tax_rate": "0"}],
    }
    data.update(overrides)
    return data


def create(api, **overrides):
    return api.post("/v1/invoices", body(**overrides), format="json")


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def test_idr_worked_example_from_the_spec(api, merchant, events):
    # 2 × 150000 at 11 % and 1 × 99999 at 0 %, fee 2.9 % + 2000:
    # subtotal 300000 + 99999 = 399999; tax round(300000 × 0.11) = 33000; fee round(399999 × 0.029) =
    # round(11599.971) = 11600, + 2000 = 13600; total 399999 + 33000 + 13600 = 446599.
    account_with_fee(merchant, gateway="xendit", currency="IDR", percent="0.029", fixed_minor=2000)
    response = create(
        api,
        gateway="xendit",
        external_id="order-1001",
        customer={"name": "Budi", "email": "budi@example.com", "phone": "+62811"},
        line_items=[
            {"name": "Widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"},
            {"name": "Gadget", "quantity": 1, "unit_price": "99999", "tax_rate": "0"},
        ],
        metadata={"order": "1001"},
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["id"].startswith("inv_")
    assert data["status"] == "draft"
    assert (data["subtotal"], data["tax_total"], data["service_fee"], data["total"]) == (
        "399999",
        "33000",
        "13600",
        "446599",
    )
    assert (data["amount_paid"], data["amount_due"], data["overpaid"]) == ("0", "446599", "0")
    assert data["line_items"] == [
        {
            "name": "Widget",
            "quantity": 2,
            "unit_price": "150000",
            "tax_rate": "0.11",
            "subtotal": "300000",
            "tax": "33000",
        },
        {
            "name": "Gadget",
            "quantity": 1,
            "unit_price": "99999",
            "tax_rate": "0.0",
            "subtotal": "99999",
            "tax": "0",
        },
    ]
    assert data["gateway"] == "xendit" and data["external_id"] == "order-1001"
    assert data["customer"] == {"name": "Budi", "email": "budi@example.com", "phone": "+62811"}
    assert data["payments"] == [] and data["parent_invoice"] is None and data["supplementary_invoices"] == []
    assert data["payment_initiated_at"] is None and data["metadata"] == {"order": "1001"}
    assert [i["amount"] for i in data["installments"]] == ["446599"]
    assert [event[0] for event in events] == ["invoice.created"]
    assert events[0][1]["id"] == data["id"] and events[0][1]["total"] == "446599"
    stored = Invoice.objects.get(pk=data["id"])
    assert stored.gateway_account.gateway == "xendit" and stored.total_minor == 446599
    assert stored.merchant_id == merchant.id and stored.mode == "test"


def test_myr_worked_example_with_half_up_line_tax(api, merchant):
    # 3 × 12.50 at 6 %:      subtotal 37.50, tax 2.25
    # 1 × 0.10 at 5 %:       subtotal  0.10, tax 0.005 -> 0.01 (half up)
    # 7 × 1.15 at 8.25 %:    subtotal  8.05, tax 0.664125 -> 0.66
    # subtotal 45.65; tax 2.92; fee 2.5 % of 45.65 = 1.14125 -> 1.14, + 0.50 = 1.64; total 50.21
    account_with_fee(merchant, gateway="xendit", currency="MYR", percent="0.025", fixed_minor=50)
    response = create(
        api,
        currency="MYR",
        gateway="xendit",
        line_items=[
            {"name": "Nasi lemak", "quantity": 3, "unit_price": "12.50", "tax_rate": "0.06"},
            {"name": "Teh tarik", "quantity": 1, "unit_price": "0.10", "tax_rate": "0.05"},
            {"name": "Kuih", "quantity": 7, "unit_price": "1.15", "tax_rate": "0.0825"},
        ],
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert [line["tax"] for line in data["line_items"]] == ["2.25", "0.01", "0.66"]
    assert [line["subtotal"] for line in data["line_items"]] == ["37.50", "0.10", "8.05"]
    assert (data["subtotal"], data["tax_total"], data["service_fee"], data["total"]) == (
        "45.65",
        "2.92",
        "1.64",
        "50.21",
    )


def test_usd_worked_example_with_half_up_not_bankers_rounding(api, merchant):
    # 1 × 19.99 at 7.25 %: tax 1.449275 -> 1.45
    # 2 × 0.25 at 10 %:    tax 0.05
    # 1 × 0.50 at 5 %:     tax 0.025 -> 0.03 (half up; banker's rounding would give 0.02)
    # subtotal 20.99; tax 1.53; fee 2.9 % of 20.99 = 0.60871 -> 0.61, + 0.30 = 0.91; total 23.43
    account_with_fee(merchant, gateway="xendit", currency="USD", percent="0.029", fixed_minor=30)
    response = create(
        api,
        currency="USD",
        gateway="xendit",
        line_items=[
            {"name": "Book", "quantity": 1, "unit_price": "19.99", "tax_rate": "0.0725"},
            {"name": "Pen", "quantity": 2, "unit_price": "0.25", "tax_rate": "0.1"},
            {"name": "Sticker", "quantity": 1, "unit_price": "0.50", "tax_rate": "0.05"},
        ],
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert [line["tax"] for line in data["line_items"]] == ["1.45", "0.05", "0.03"]
    assert (data["subtotal"], data["tax_total"], data["service_fee"], data["total"]) == (
        "20.99",
        "1.53",
        "0.91",
        "23.43",
    )


def test_usd_fee_rounds_half_up(api, merchant):
    # 10.00 at 0 % tax; fee 3.45 % of 10.00 = 0.345 -> 0.35; total 10.35
    account_with_fee(merchant, gateway="xendit", currency="USD", percent="0.0345", fixed_minor=0)
    data = create(
        api,
        currency="USD",
        gateway="xendit",
        line_items=[{"name": "X", "quantity": 1, "unit_price": "10.00"}],
    ).json()
    assert (data["service_fee"], data["total"]) == ("0.35", "10.35")


def test_gateway_can_be_named_by_account_id(api, merchant):
    account = account_with_fee(merchant, gateway="midtrans", currency="IDR", percent="0.01", fixed_minor=0)
    data = create(api, gateway=account.id).json()
    assert data["gateway"] == "midtrans" and data["gateway_account"] == account.id
    assert data["service_fee"] == "1000"


def test_json_numbers_are_accepted_as_amounts(api):
    raw = json.dumps(
        {
            "currency": "USD",
            "gateway": "sandbox",
            "line_items": [{"name": "A", "quantity": 1, "unit_price": 0}],
        }
    ).replace('"unit_price": 0', '"unit_price": 16.99')
    response = api.post("/v1/invoices", raw, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["total"] == "16.99"


def test_default_expiry_is_24_hours_and_gateway_defaults_to_sandbox_in_test_mode(api):
    before = timezone.now()
    response = api.post(
        "/v1/invoices",
        {"currency": "IDR", "line_items": [{"name": "A", "quantity": 1, "unit_price": "5000"}]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    invoice = Invoice.objects.get(pk=response.json()["id"])
    assert before + timedelta(hours=24) <= invoice.expires_at <= timezone.now() + timedelta(hours=24)
    assert invoice.gateway == "sandbox"
    assert response.json()["expires_at"] == iso(invoice.expires_at)


def test_expiry_at_the_bounds_is_accepted(api):
    assert create(api, expires_at=iso(timezone.now() + timedelta(hours=1))).status_code == 201
    assert (
        create(api, expires_at=iso(timezone.now() + timedelta(days=30) - timedelta(seconds=5))).status_code
        == 201
    )


def test_duplicate_external_id_gets_409_and_one_invoice(api):
    assert create(api, external_id="order-7").status_code == 201
    response = create(api, external_id="order-7")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "external_id_duplicate"
    assert response.json()["error"]["param"] == "external_id"
    assert Invoice.objects.filter(external_id="order-7").count() == 1
    assert LineItem.objects.count() == 1 and Installment.objects.count() == 1


def test_same_external_id_is_fine_for_another_merchant_or_mode(api, merchant, other_merchant, client_for):
    assert create(api, external_id="order-8").status_code == 201
    _, live_key = make_api_key(merchant, mode="live")
    GatewayAccountFactory(merchant=merchant, mode="live", gateway="xendit")
    assert create(client_for(live_key), external_id="order-8", gateway="xendit").status_code == 201
    _, other_key = make_api_key(other_merchant)
    assert create(client_for(other_key), external_id="order-8").status_code == 201


def test_gateway_is_required_in_live_mode(merchant, client_for):
    _, live_key = make_api_key(merchant, mode="live")
    response = client_for(live_key).post(
        "/v1/invoices", {"currency": "IDR", "line_items": body()["line_items"]}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "gateway"


def _lines(n, **item):
    line = {"name": "Item", "quantity": 1, "unit_price": "1000", "tax_rate": "0"}
    line.update(item)
    return [dict(line) for _ in range(n)]


BAD_INPUTS = [
    ("unknown currency", {"currency": "XYZ"}, "currency"),
    ("currency not enabled", {"currency": "EUR"}, "currency"),
    ("IDR with decimals", {"line_items": _lines(1, unit_price="10.5")}, "line_items.0.unit_price"),
    (
        "USD with 3 decimals",
        {"currency": "USD", "line_items": _lines(1, unit_price="1.234")},
        "line_items.0.unit_price",
    ),
    ("negative price", {"line_items": _lines(1, unit_price="-1")}, "line_items.0.unit_price"),
    ("non-numeric price", {"line_items": _lines(1, unit_price="abc")}, "line_items.0.unit_price"),
    ("price as object", {"line_items": _lines(1, unit_price={"v": 1})}, "line_items.0.unit_price"),
    (
        "bad price on the 3rd line",
        {"line_items": _lines(2) + _lines(1, unit_price="1.5")},
        "line_items.2.unit_price",
    ),
    ("quantity 0", {"line_items": _lines(1, quantity=0)}, "line_items.0.quantity"),
    ("quantity negative", {"line_items": _lines(1, quantity=-2)}, "line_items.0.quantity"),
    ("quantity fractional", {"line_items": _lines(1, quantity="1.5")}, "line_items.0.quantity"),
    ("tax rate above 1", {"line_items": _lines(1, tax_rate="1.01")}, "line_items.0.tax_rate"),
    ("tax rate with 5 decimals", {"line_items": _lines(1, tax_rate="0.12345")}, "line_items.0.tax_rate"),
    ("tax rate negative", {"line_items": _lines(1, tax_rate="-0.1")}, "line_items.0.tax_rate"),
    ("empty line items", {"line_items": []}, "line_items"),
    ("101 line items", {"line_items": _lines(101)}, "line_items"),
    ("line name missing", {"line_items": [{"quantity": 1, "unit_price": "1"}]}, "line_items.0.name"),
    ("all zero prices", {"line_items": _lines(1, unit_price="0")}, "line_items"),
    ("installments count 1", {"installments": {"count": 1}}, "installments.count"),
    ("installments count 13", {"installments": {"count": 13}}, "installments.count"),
    (
        "custom amounts not summing",
        {"installments": {"count": 2, "amounts": ["50000", "40000"]}},
        "installments.amounts",
    ),
    (
        "custom amount zero",
        {"installments": {"count": 3, "amounts": ["50000", "0", "50000"]}},
        "installments.amounts.1",
    ),
    (
        "custom amount with decimals",
        {"installments": {"count": 2, "amounts": ["50000.5", "49999.5"]}},
        "installments.amounts.0",
    ),
    (
        "amounts count mismatch",
        {"installments": {"count": 3, "amounts": ["50000", "50000"]}},
        "installments.amounts",
    ),
    (
        "due dates not increasing",
        {"installments": {"count": 3, "due_dates": ["2030-01-10", "2030-01-10", "2030-02-10"]}},
        "installments.due_dates.1",
    ),
    (
        "due dates decreasing",
        {"installments": {"count": 2, "due_dates": ["2030-02-10", "2030-01-10"]}},
        "installments.due_dates.1",
    ),
    (
        "due date not a date",
        {"installments": {"count": 2, "due_dates": ["soon", "later"]}},
        "installments.due_dates.0",
    ),
    ("gateway the merchant lacks", {"gateway": "xendit"}, "gateway"),
    ("unknown gateway account id", {"gateway": "gwa_doesnotexist"}, "gateway"),
    ("unknown top-level field", {"colour": "red"}, "colour"),
    (
        "unknown line field",
        {"line_items": [{"name": "A", "quantity": 1, "unit_price": "1", "sku": "x"}]},
        "line_items.0.sku",
    ),
    ("unknown installments field", {"installments": {"count": 2, "every": "week"}}, "installments.every"),
    ("unknown customer field", {"customer": {"name": "A", "age": "3"}}, "customer.age"),
    ("bad customer email", {"customer": {"email": "not-an-email"}}, "customer.email"),
    ("metadata value not a string", {"metadata": {"a": 1}}, "metadata"),
    ("external_id too long", {"external_id": "x" * 256}, "external_id"),
]


@pytest.mark.parametrize("case,overrides,param", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_400_with_param_and_creates_nothing(api, case, overrides, param, events):
    response = create(api, **overrides)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    assert Invoice.objects.count() == 0 and LineItem.objects.count() == 0 and Installment.objects.count() == 0
    assert events == []


@pytest.mark.parametrize(
    "delta,label",
    [
        (timedelta(minutes=59), "under 1 hour"),
        (timedelta(days=30, minutes=1), "over 30 days"),
        (-timedelta(minutes=5), "in the past"),
    ],
)
def test_bad_expiry_gets_400(api, delta, label):
    response = create(api, expires_at=iso(timezone.now() + delta))
    assert response.status_code == 400, label
    assert response.json()["error"]["param"] == "expires_at"
    assert Invoice.objects.count() == 0


def test_gateway_that_does_not_take_the_currency_gets_400(api, merchant):
    GatewayAccountFactory(merchant=merchant, gateway="xendit", currencies=["IDR"])
    response = create(api, gateway="xendit", currency="USD", line_items=_lines(1, unit_price="10.00"))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "gateway"
    assert Invoice.objects.count() == 0


def test_disabled_gateway_account_gets_400(api, merchant):
    GatewayAccountFactory(merchant=merchant, gateway="xendit", enabled=False)
    response = create(api, gateway="xendit")
    assert response.status_code == 400 and response.json()["error"]["param"] == "gateway"


def test_another_merchants_gateway_account_gets_400(api):
    other = GatewayAccountFactory(gateway="xendit")
    response = create(api, gateway=other.id)
    assert response.status_code == 400 and response.json()["error"]["param"] == "gateway"


def test_not_json_body_gets_400_envelope(api):
    response = api.post("/v1/invoices", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_idempotent_replay_of_a_creation_returns_the_same_invoice_and_creates_one(api):
    first = api.post("/v1/invoices", body(), format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    second = api.post("/v1/invoices", body(), format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert Invoice.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_with_one_external_id_create_exactly_one(merchant):
    import threading

    from django.db import connection

    from invoices.calc import LineItemIn
    from invoices.services import invoice_create
    from paytrust.errors import Conflict

    barrier = threading.Barrier(5)
    outcomes = []

    def worker():
        try:
            barrier.wait(timeout=10)
            invoice_create(
                merchant=merchant,
                mode="test",
                currency="IDR",
                line_items=[LineItemIn("A", 1, "1000")],
                external_id="race-1",
            )
            outcomes.append("created")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["created"] + ["external_id_duplicate"] * 4
    assert Invoice.objects.filter(external_id="race-1").count() == 1
    assert LineItem.objects.count() == 1 and Installment.objects.count() == 1
