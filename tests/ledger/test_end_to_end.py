"""Issue 13's end-to-end walk, through the API on the sandbox, as a merchant and an operator would do it: an
invoice with tax and a service fee is paid on the sandbox checkout page; refunds of 30 % and 70 % succeed; a third
is 422; the balance, the financial report and the balance transactions show it; `verify_ledger` exits 0; an entry
corrupted by hand (around the append-only trigger, as only a database superuser could) makes it exit 1 naming the
movement."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from gateways.models import GatewayFee
from invoices.calc import CustomerIn, LineItemIn
from invoices.services import invoice_create
from ledger.models import Entry, Movement
from tests.payments.factories import sandbox_account
from tests.webhooks.inbound_support import process_all

pytestmark = pytest.mark.django_db


def _verify() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_ledger", stdout=out, stderr=io.StringIO())
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def _pay_on_the_checkout_page(api, invoice_id: str) -> str:
    payment = api.post(f"/v1/invoices/{invoice_id}/payments", {}, format="json").json()
    page = "/" + payment["payment_url"].split("://", 1)[1].split("/", 1)[1]
    html = Client().get(page).content.decode()
    nonce = html.split('name="nonce" value="', 1)[1].split('"', 1)[0]
    assert Client().post(page, {"nonce": nonce, "action": "pay"}).status_code == 200
    assert process_all() == ["processed"]
    return payment["id"]


def test_pay_refund_30_and_70_percent_a_third_is_422_balance_report_and_verify_ledger_agree(api, merchant):
    account = sandbox_account(merchant)
    GatewayFee.objects.create(account=account, currency="IDR", percent="0", fixed_minor=2000)
    now = timezone.now()
    invoice = invoice_create(
        merchant=merchant,
        mode="test",
        currency="IDR",
        gateway=account.id,
        line_items=[LineItemIn("Widget", 1, "100000", "0.11")],
        customer=CustomerIn("Budi", "budi@example.com", "+628123456789"),
        expires_at=now + timedelta(days=1),
        now=now,
    )
    assert invoice.total_minor == 113000  # 100,000 + 11 % tax + 2,000 service fee
    payment_id = _pay_on_the_checkout_page(api, invoice.id)

    thirty = api.post(f"/v1/payments/{payment_id}/refunds", {"amount": "33900"}, format="json")
    seventy = api.post(f"/v1/payments/{payment_id}/refunds", {"amount": "79100"}, format="json")
    third = api.post(f"/v1/payments/{payment_id}/refunds", {"amount": "1"}, format="json")

    assert (thirty.status_code, thirty.json()["status"]) == (201, "succeeded")
    assert (seventy.status_code, seventy.json()["status"]) == (201, "succeeded")
    assert third.status_code == 422 and third.json()["error"]["code"] == "refund_exceeds_available"
    assert api.get(f"/v1/payments/{payment_id}").json()["status"] == "refunded"

    # The balance: the merchant's share (100,000 taxable) and more went back; tax and fee stay held (ADR 0045).
    [idr] = api.get("/v1/balance").json()["currencies"]
    assert idr == {
        "currency": "IDR",
        "available": "-13000",  # 100,000 in, 113,000 refunded
        "pending": "0",
        "refunds_in_flight": "0",
        "tax_held": "11000",
        "fees": "2000",
        "customer_credit": "0",
    }
    types = [t["type"] for t in api.get("/v1/balance/transactions?limit=100").json()["data"]]
    assert sorted(types) == ["payment", "refund", "refund", "refund_succeeded", "refund_succeeded"]

    # The financial report of the period shows the same money.
    start, end = (now - timedelta(days=1)).date(), (now + timedelta(days=2)).date()
    report = api.get(f"/v1/reports/financial?start={start}&end={end}").json()
    [line] = report["currencies"]
    assert (
        line["gross_collected"],
        line["tax_collected"],
        line["service_fees"],
        line["refunds"],
        line["net_to_merchant"],
    ) == (
        "113000",
        "11000",
        "2000",
        "113000",
        "-2000",
    )

    code, out = _verify()
    assert code == 0, out
    assert out.startswith("ledger OK: 5 movements")

    # Corrupt one line of the payment movement behind the trigger's back.
    movement = Movement.objects.get(source_id=payment_id, type="payment")
    tax_line = Entry.objects.get(movement=movement, account__code="tax_payable")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the postings above are checked (and pass) first
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                "UPDATE ledger_entry SET amount_minor = amount_minor + 100 WHERE id = %s", [tax_line.pk]
            )
        finally:
            cursor.execute("SET session_replication_role = origin")

    code, out = _verify()
    assert code == 1
    assert f"movement_unbalanced {movement.pk}: entries sum to 100" in out.splitlines(), out
    assert "ledger OK" not in out
