"""Admin for gateway accounts: writes go through the services (encrypted credentials, validated fees)."""

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model

from gateways.models import GatewayAccount, GatewayFee
from gateways.selectors import gateway_account_credentials
from tests.gateways.conftest import XENDIT_CALLBACK_TOKEN, XENDIT_SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("finance", "finance@example.com", "pw-123456789")
    client.force_login(user)
    return client


def form_data(merchant, **overrides):
    data = {
        "merchant": merchant.pk,
        "mode": "test",
        "gateway": "xendit",
        "currencies": "IDR,USD",
        "enabled": "on",
        "credentials": f'{{"secret_key": "{XENDIT_SECRET}", "callback_token": "{XENDIT_CALLBACK_TOKEN}"}}',
        "metadata": "{}",
        "fees-TOTAL_FORMS": "1",
        "fees-INITIAL_FORMS": "0",
        "fees-MIN_NUM_FORMS": "0",
        "fees-MAX_NUM_FORMS": "1000",
        "fees-0-currency": "USD",
        "fees-0-percent": "0.029",
        "fees-0-fixed": "0.30",
    }
    data.update(overrides)
    return data


def test_admin_add_encrypts_credentials_and_saves_fees(staff, merchant):
    response = staff.post("/admin/gateways/gatewayaccount/add/", form_data(merchant))
    assert response.status_code == 302, response.content.decode()[:3000]
    account = GatewayAccount.objects.get(merchant=merchant, gateway="xendit")
    assert XENDIT_SECRET not in account.credentials_encrypted
    assert gateway_account_credentials(account=account)["callback_token"] == XENDIT_CALLBACK_TOKEN
    fee = GatewayFee.objects.get(account=account)
    assert (fee.currency, str(fee.percent), fee.fixed_minor) == ("USD", "0.0290", 30)

    page = staff.get(f"/admin/gateways/gatewayaccount/{quote(account.pk)}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert XENDIT_SECRET not in html and XENDIT_CALLBACK_TOKEN not in html
    assert "/v1/webhooks/xendit/" in html


def test_admin_rejects_bad_credentials_and_currencies(staff, merchant):
    response = staff.post(
        "/admin/gateways/gatewayaccount/add/",
        form_data(merchant, credentials='{"secret_key": "x"}', currencies="IDR,EUR"),
    )
    assert response.status_code == 200  # form re-rendered with errors
    assert not GatewayAccount.objects.filter(gateway="xendit").exists()


def test_admin_change_keeps_credentials_when_left_empty_and_replaces_fees(staff, merchant):
    staff.post("/admin/gateways/gatewayaccount/add/", form_data(merchant))
    account = GatewayAccount.objects.get(merchant=merchant, gateway="xendit")
    fee = GatewayFee.objects.get(account=account)
    data = form_data(
        merchant,
        credentials="",
        currencies="IDR",
        **{
            "fees-TOTAL_FORMS": "1",
            "fees-INITIAL_FORMS": "1",
            "fees-0-id": str(fee.pk),
            "fees-0-account": account.pk,
            "fees-0-currency": "IDR",
            "fees-0-percent": "0.01",
            "fees-0-fixed": "2500",
        },
    )
    response = staff.post(f"/admin/gateways/gatewayaccount/{quote(account.pk)}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    account.refresh_from_db()
    assert account.currencies == ["IDR"]
    assert gateway_account_credentials(account=account)["secret_key"] == XENDIT_SECRET
    assert [(f.currency, f.fixed_minor) for f in GatewayFee.objects.filter(account=account)] == [
        ("IDR", 2500)
    ]
