"""The ledger's back-office pages, as each role (users made by staff_save, what `manage.py create_staff` calls):
support and finance read movements (entries inline, filters, search by txn or source id) and accounts (with their
balances); the other roles do not see them; nobody, not even a superuser, adds, changes or deletes (append-only)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import Client

from apikeys.services import Actor
from ledger.models import Account, Entry, Movement
from ledger.services import movement_post
from reporting.roles import staff_save

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
MOVEMENTS = "/admin/ledger/movement/"
ACCOUNTS = "/admin/ledger/account/"


def login(role: str) -> Client:
    saved = staff_save(
        username=f"{role}-user",
        email=f"{role}@paytrust.test",
        role=role,
        password=PASSWORD,
        actor=Actor.system(),
    )
    client = Client()
    assert client.login(username=saved.user.username, password=PASSWORD)
    return client


@pytest.fixture
def superuser_client() -> Client:
    get_user_model().objects.create_superuser("root", "root@paytrust.test", PASSWORD)
    client = Client()
    assert client.login(username="root", password=PASSWORD)
    return client


@pytest.fixture
def movements(merchant, other_merchant):
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    paid, _ = movement_post(
        merchant_id=merchant.id, mode="test", currency="IDR", type="payment", source_type="payment",
        source_id="pay_admin1", occurred_at=at, description="payment pay_admin1 on invoice inv_x",
        lines={"gateway_clearing": 120000, "tax_payable": -11000, "customer_credit": -9000,
               "merchant_payable": -100000},
    )  # fmt: skip
    refunded, _ = movement_post(
        merchant_id=other_merchant.id, mode="live", currency="USD", type="chargeback", source_type="refund",
        source_id="ref_admin2", occurred_at=at, lines={"merchant_payable": 1599, "gateway_clearing": -1599},
    )  # fmt: skip
    return paid, refunded


def _change_url(obj) -> str:
    return f"/admin/ledger/{obj._meta.model_name}/{quote(obj.pk)}/change/"


@pytest.mark.parametrize("role", ["support", "finance"])
def test_support_and_finance_read_movements_with_their_entries_and_accounts(role, movements):
    paid, refunded = movements
    client = login(role)

    listing = client.get(MOVEMENTS)
    detail = client.get(_change_url(paid))
    accounts = client.get(ACCOUNTS)

    assert listing.status_code == 200
    assert paid.id in listing.content.decode() and refunded.id in listing.content.decode()
    assert "IDR 120,000" in listing.content.decode()  # the gross, with its currency
    assert detail.status_code == 200
    page = detail.content.decode()
    for text in (
        "merchant_payable",
        "IDR 100,000",
        "tax_payable",
        "IDR 11,000",
        "customer_credit",
        "pay_admin1",
    ):
        assert text in page, text
    assert 'name="_save"' not in page  # view only
    assert accounts.status_code == 200
    assert "IDR 120,000 (debit)" in accounts.content.decode()  # gateway_clearing, an asset
    # merchant_payable after a chargeback and nothing else: a credit-normal account below zero (the merchant owes).
    assert "USD -15.99 (credit)" in accounts.content.decode()


def test_movements_are_searched_by_source_or_txn_id_and_filtered(movements):
    paid, refunded = movements
    client = login("support")

    def listed(**query) -> set[str]:
        response = client.get(MOVEMENTS, query)
        assert response.status_code == 200
        return {m.id for m in response.context["cl"].result_list}

    assert listed(q="ref_admin2") == {refunded.id}
    assert listed(q=paid.id) == {paid.id}
    assert listed(type="chargeback") == {refunded.id}
    assert listed(currency="IDR") == {paid.id}
    assert listed(mode="live") == {refunded.id}


@pytest.mark.parametrize("role", ["operations", "administrator"])
def test_other_roles_do_not_see_the_ledger(role, movements):
    client = login(role)

    assert client.get(MOVEMENTS).status_code == 403
    assert client.get(ACCOUNTS).status_code == 403
    assert client.get(_change_url(movements[0])).status_code == 403


def test_nobody_adds_changes_or_deletes_ledger_rows(movements, superuser_client):
    paid, _ = movements
    account = Account.objects.filter(merchant_id=paid.merchant_id).first()
    before = (Movement.objects.count(), Entry.objects.count(), Account.objects.count())
    for client in (login("finance"), login("support"), superuser_client):
        assert client.get(f"{MOVEMENTS}add/").status_code == 403
        assert client.get(f"{ACCOUNTS}add/").status_code == 403
        assert client.get(f"{MOVEMENTS}{quote(paid.pk)}/delete/").status_code == 403
        assert client.get(f"{ACCOUNTS}{account.pk}/delete/").status_code == 403
        assert client.post(_change_url(paid), {"description": "edited"}).status_code == 403
        forged = client.post(
            MOVEMENTS, {"action": "delete_selected", "_selected_action": [paid.pk], "index": 0}
        )
        assert forged.status_code == 403

    assert (Movement.objects.count(), Entry.objects.count(), Account.objects.count()) == before
    paid.refresh_from_db()
    assert paid.description == "payment pay_admin1 on invoice inv_x"
