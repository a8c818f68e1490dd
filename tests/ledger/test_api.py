"""GET /v1/balance and /v1/balance/transactions[/{id}]: figures from money moved the production way (sandbox
payments applied by payment_apply_gateway_status, gateway-reported refunds, an authorization hold through
bookkeeping), per currency, tenant and mode isolated; the transactions list with its filters, cursor pagination
and no N+1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateways.models import SandboxCheckoutSession
from ledger.models import Movement
from ledger.services import movement_post
from payments.services import payment_initiate
from payments.services.bookkeeping import post_authorization
from tests.factories import make_api_key
from tests.ledger.helpers import refund, sandbox_with_fee
from tests.reporting.helpers import invoice, pay
from tests.webhooks.inbound_support import process_all

pytestmark = pytest.mark.django_db

PAID_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def overpaid_and_refunded(merchant):
    """IDR 100000 @ 11 %: tax 11000, fee 1000 + 500 = 1500, total 112500; paid 120000 (7500 over);
    then 10000 refunded (7500 from the customer credit, 2500 from the merchant)."""
    account = sandbox_with_fee(merchant)
    inv = invoice(merchant, account, currency="IDR", lines=[("Course", 1, "100000", "0.11")])
    payment = pay(inv, amount_minor=120000, at=PAID_AT)
    refund(payment, 10000)
    return payment


def _figures(response, currency: str) -> dict:
    assert response.status_code == 200, response.content
    return next(line for line in response.json()["currencies"] if line["currency"] == currency)


# ---- GET /v1/balance -----------------------------------------------------------------------------------------


def test_balance_shows_each_figure_of_the_ledger_per_currency(merchant, api, overpaid_and_refunded):
    usd = invoice(merchant, sandbox_with_fee(merchant), currency="USD", lines=[("Book", 1, "10.00", "0")])
    pay(usd, amount_minor=None, at=PAID_AT)
    held = payment_initiate(
        merchant=merchant,
        mode="test",
        invoice_id=invoice(
            merchant, sandbox_with_fee(merchant), currency="IDR", lines=[("X", 1, "50000", "0")]
        ).id,
    ).payment
    post_authorization(payment=held, amount_minor=50000, occurred_at=timezone.now())

    response = api.get("/v1/balance")

    body = response.json()
    assert (body["object"], body["mode"]) == ("balance", "test")
    assert [line["currency"] for line in body["currencies"]] == ["IDR", "USD"]
    assert _figures(response, "IDR") == {
        "currency": "IDR",
        "available": "97500",  # 100000 - 2500 drawn by the refund
        "pending": "50000",
        "refunds_in_flight": "0",  # the gateway reported it paid out
        "tax_held": "11000",
        "fees": "1500",
        "customer_credit": "0",  # 7500 overpaid, all refunded
    }
    assert _figures(response, "USD") == {
        "currency": "USD",
        "available": "10.00",
        "pending": "0.00",
        "refunds_in_flight": "0.00",
        "tax_held": "0.00",
        "fees": "0.00",
        "customer_credit": "0.00",
    }


def test_an_authorization_is_pending_until_captured(merchant, api):
    """The sandbox's authorize-and-capture flow (docs/adr/0047): the hold shows as pending; a partial capture
    releases all of it and the captured money becomes available."""
    inv = invoice(merchant, sandbox_with_fee(merchant), currency="IDR", lines=[("Hold", 1, "150000", "0")])
    created = api.post(f"/v1/invoices/{inv.id}/payments", {"capture_method": "manual"}, format="json")
    assert created.status_code == 201, created.content
    path = "/" + created.json()["payment_url"].split("://", 1)[1].split("/", 1)[1]
    nonce = SandboxCheckoutSession.objects.get(payment_id=created.json()["id"]).form_nonce
    assert Client().post(path, {"nonce": nonce, "action": "authorize"}).status_code == 200
    assert process_all() == ["processed"]

    held = _figures(api.get("/v1/balance"), "IDR")
    captured = api.post(f"/v1/payments/{created.json()['id']}/capture", {"amount": "100000"}, format="json")
    assert captured.status_code == 200, captured.content
    after = _figures(api.get("/v1/balance"), "IDR")

    # The hold: the invoice's total, 150000 + fee 1 % + 500 = 152000.
    assert (held["pending"], held["available"], held["fees"]) == ("152000", "0", "0")
    # 100000 captured: a partial payment carries the fee's proportional floor, floor(2000 × 100000 / 152000) = 1315.
    assert (after["pending"], after["available"], after["fees"]) == ("0", "98685", "1315")
    types = [t["type"] for t in api.get("/v1/balance/transactions").json()["data"]]
    assert sorted(types) == ["authorization", "capture", "payment"]


def test_a_chargeback_beyond_the_merchants_share_shows_a_negative_available(merchant, api):
    account = sandbox_with_fee(merchant)
    inv = invoice(merchant, account, currency="IDR", lines=[("Course", 1, "100000", "0.11")])
    payment = pay(inv, amount_minor=None, at=PAID_AT)  # 112500: merchant 100000, tax 11000, fee 1500

    refund(payment, 112500, chargeback=True)

    assert _figures(api.get("/v1/balance"), "IDR")["available"] == "-12500"


def test_balance_is_the_calling_keys_merchant_and_mode_only(
    merchant, other_merchant, client_for, overpaid_and_refunded
):
    other_inv = invoice(
        other_merchant, sandbox_with_fee(other_merchant), currency="IDR", lines=[("X", 1, "70000", "0")]
    )
    pay(other_inv, amount_minor=None, at=PAID_AT)
    live = client_for(make_api_key(merchant, mode="live")[1])
    other = client_for(make_api_key(other_merchant)[1])

    assert live.get("/v1/balance").json() == {"object": "balance", "mode": "live", "currencies": []}
    assert _figures(other.get("/v1/balance"), "IDR")["available"] == "70000"


def test_balance_is_one_aggregate_over_the_ledger(merchant, api):
    for index, currency in enumerate(["IDR", "USD", "MYR"]):
        _movement(merchant, index, at=datetime(2026, 11, 1, tzinfo=UTC), currency=currency)
    api.get("/v1/balance")  # the first request also authenticates the key (then cached)

    with CaptureQueriesContext(connection) as captured:
        assert len(api.get("/v1/balance").json()["currencies"]) == 3

    assert len([q for q in captured.captured_queries if "ledger_" in (q["sql"] or "")]) == 1


def test_a_new_merchant_has_no_currencies(api):
    assert api.get("/v1/balance").json()["currencies"] == []


def test_balance_needs_an_api_key(client):
    assert client.get("/v1/balance").status_code == 401


# ---- GET /v1/balance/transactions ----------------------------------------------------------------------------


def test_transactions_show_each_movement_with_its_entries_and_source(api, overpaid_and_refunded):
    payment = overpaid_and_refunded

    response = api.get("/v1/balance/transactions")

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    refund_id = payment.refunds.get().id
    # Newest first by occurred_at: the refund's two movements (now) before the payment (paid in the past).
    assert {(t["type"], t["source"]["type"], t["source"]["id"]) for t in data[:2]} == {
        ("refund", "refund", refund_id),
        ("refund_succeeded", "refund", refund_id),
    }
    assert (data[2]["type"], data[2]["source"]) == ("payment", {"type": "payment", "id": payment.id})
    assert len(data) == 3
    paid = data[-1]
    assert paid["id"].startswith("txn_") and paid["object"] == "balance_transaction"
    assert (paid["mode"], paid["currency"], paid["amount"], paid["reverses"]) == (
        "test",
        "IDR",
        "120000",
        None,
    )
    assert paid["occurred_at"] == "2026-11-20T08:00:00Z"
    assert paid["updated_at"] == paid["created_at"]
    assert {e["account"]: e["amount"] for e in paid["entries"]} == {
        "gateway_clearing": "120000",
        "tax_payable": "-11000",
        "service_fees": "-1500",
        "customer_credit": "-7500",
        "merchant_payable": "-100000",
    }
    refund = next(t for t in data if t["type"] == "refund")
    assert refund["amount"] == "10000"
    assert {e["account"]: e["amount"] for e in refund["entries"]} == {
        "customer_credit": "7500",
        "merchant_payable": "2500",
        "refunds_payable": "-10000",
    }


def _movement(
    merchant, index: int, *, at: datetime, type: str = "payment", mode: str = "test", currency="IDR"
):
    movement, _ = movement_post(
        merchant_id=merchant.id,
        mode=mode,
        currency=currency,
        type=type,
        source_type="payment",
        source_id=f"pay_m{index}",
        occurred_at=at,
        lines={"gateway_clearing": 1000 * (index + 1), "merchant_payable": -1000 * (index + 1)},
    )
    return movement


def test_transactions_page_through_all_movements_newest_first_without_repeats(merchant, api):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    # Two share an occurred_at: the id breaks the tie, as the cursor does.
    times = [base + timedelta(hours=h) for h in (5, 1, 3, 3, 2, 4, 0)]
    movements = [_movement(merchant, i, at=at) for i, at in enumerate(times)]
    expected = [m.id for m in sorted(movements, key=lambda m: (m.occurred_at, m.id), reverse=True)]

    seen, cursor, pages = [], None, 0
    while True:
        response = api.get("/v1/balance/transactions", {"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [t["id"] for t in body["data"]]
        pages += 1
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]

    assert seen == expected
    assert pages == 3


def test_a_page_costs_the_same_queries_whatever_its_size(merchant, api):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(12):
        _movement(merchant, i, at=base + timedelta(minutes=i))

    def queries(limit: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert len(api.get("/v1/balance/transactions", {"limit": limit}).json()["data"]) == limit
        return len(captured)

    queries(1)  # the first request also authenticates the key (then cached)
    assert queries(2) == queries(12)


def test_transactions_filter_by_type_and_occurred_period(merchant, api):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    early = _movement(merchant, 0, at=base)
    middle = _movement(merchant, 1, at=base + timedelta(days=1))
    late = _movement(merchant, 2, at=base + timedelta(days=2))
    held, _ = movement_post(
        merchant_id=merchant.id, mode="test", currency="IDR", type="authorization", source_type="payment",
        source_id="pay_held", occurred_at=base + timedelta(days=1, hours=1),
        lines={"gateway_authorized": 500, "merchant_pending": -500},
    )  # fmt: skip

    def ids(**params) -> list[str]:
        response = api.get("/v1/balance/transactions", params)
        assert response.status_code == 200, response.content
        return [t["id"] for t in response.json()["data"]]

    assert ids(type="authorization") == [held.id]
    assert ids(type="payment") == [late.id, middle.id, early.id]
    assert ids(start=(base + timedelta(days=1)).isoformat()) == [late.id, held.id, middle.id]
    assert ids(end=(base + timedelta(days=1)).isoformat()) == [early.id]  # end is exclusive
    assert ids(start="2026-11-02", end="2026-11-03", type="payment") == [middle.id]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"type": "bonus"}, "type"),
        ({"type": ""}, "type"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-02-30"}, "end"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(api, params, param):
    response = api.get("/v1/balance/transactions", params)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param


def test_transactions_are_the_calling_keys_merchant_and_mode_only(merchant, other_merchant, api, client_for):
    at = datetime(2026, 11, 1, tzinfo=UTC)
    mine = _movement(merchant, 0, at=at)
    live = _movement(merchant, 1, at=at, mode="live")
    theirs = _movement(other_merchant, 2, at=at)

    assert [t["id"] for t in api.get("/v1/balance/transactions").json()["data"]] == [mine.id]
    assert api.get(f"/v1/balance/transactions/{mine.id}").json()["id"] == mine.id
    for hidden in (live.id, theirs.id, "txn_doesnotexist"):
        response = api.get(f"/v1/balance/transactions/{hidden}")
        assert response.status_code == 404, hidden
        assert response.json()["error"]["code"] == "resource_missing"
    live_api = client_for(make_api_key(merchant, mode="live")[1])
    assert [t["id"] for t in live_api.get("/v1/balance/transactions").json()["data"]] == [live.id]


def test_a_reversal_names_the_movement_it_reverses(merchant, api):
    from ledger.services import movement_reverse

    original = _movement(merchant, 0, at=datetime(2026, 11, 1, tzinfo=UTC))
    reversal, _ = movement_reverse(movement=original, occurred_at=datetime(2026, 11, 2, tzinfo=UTC))

    body = api.get(f"/v1/balance/transactions/{reversal.id}").json()

    assert (body["type"], body["reverses"], body["source"]) == (
        "reversal",
        original.id,
        {"type": "movement", "id": original.id},
    )
    assert {e["account"]: e["amount"] for e in body["entries"]} == {
        "gateway_clearing": "-1000",
        "merchant_payable": "1000",
    }
    assert body["amount"] == "1000"
    assert Movement.objects.count() == 2
