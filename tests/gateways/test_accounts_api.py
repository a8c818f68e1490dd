"""Gateway accounts API: credentials write-only and encrypted, fees, 409 on a second enabled account, isolation."""

import json

import pytest
from django.db import connection

from apikeys.models import AuditLog
from gateways.models import GatewayAccount, GatewayFee
from gateways.selectors import gateway_account_credentials
from tests.factories import MerchantFactory, make_api_key
from tests.gateways.conftest import (
    MIDTRANS_CLIENT_KEY,
    MIDTRANS_SERVER_KEY,
    XENDIT_CALLBACK_TOKEN,
    XENDIT_SECRET,
)

pytestmark = pytest.mark.django_db

XENDIT_BODY = {
    "gateway": "xendit",
    "credentials": {"secret_key": XENDIT_SECRET, "callback_token": XENDIT_CALLBACK_TOKEN},
    "currencies": ["IDR", "USD"],
    "enabled": True,
    "fees": [
        {"currency": "IDR", "percent": "0.029", "fixed": "2000"},
        {"currency": "USD", "percent": "0.03", "fixed": "0.30"},
    ],
    "metadata": {"team": "payments"},
}


def create(api, body=None):
    return api.post("/v1/gateway-accounts", body or XENDIT_BODY, format="json")


def test_create_returns_account_without_credentials(api, merchant, settings):
    response = create(api)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["id"].startswith("gwa_")
    assert data["gateway"] == "xendit" and data["mode"] == "test"
    assert data["currencies"] == ["IDR", "USD"]
    assert data["fees"] == [
        {"currency": "IDR", "percent": "0.029", "fixed": "2000"},
        {"currency": "USD", "percent": "0.03", "fixed": "0.30"},
    ]
    assert data["credentials_set"] is True
    assert data["credentials_hint"] == {"secret_key": "…jw==", "callback_token": "…a6b7"}
    assert data["webhook_url"] == f"{settings.PUBLIC_BASE_URL}/v1/webhooks/xendit/{data['id']}"
    assert data["metadata"] == {"team": "payments"}
    assert XENDIT_SECRET not in response.content.decode()
    assert XENDIT_CALLBACK_TOKEN not in response.content.decode()
    fee = GatewayFee.objects.get(account_id=data["id"], currency="USD")
    assert (str(fee.percent), fee.fixed_minor) == ("0.0300", 30)


def test_credentials_are_encrypted_in_the_database(api):
    account_id = create(api).json()["id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials_encrypted FROM gateways_gatewayaccount WHERE id = %s", [account_id]
        )
        (raw,) = cursor.fetchone()
    assert raw and XENDIT_SECRET not in raw and XENDIT_CALLBACK_TOKEN not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    account = GatewayAccount.objects.get(pk=account_id)
    assert gateway_account_credentials(account=account) == {
        "secret_key": XENDIT_SECRET,
        "callback_token": XENDIT_CALLBACK_TOKEN,
    }


def test_list_and_detail_never_echo_credentials(api):
    account_id = create(api).json()["id"]
    listing = api.get("/v1/gateway-accounts")
    detail = api.get(f"/v1/gateway-accounts/{account_id}")
    assert listing.status_code == detail.status_code == 200
    ids = [a["id"] for a in listing.json()["data"]]
    assert account_id in ids
    for response in (listing, detail):
        text = response.content.decode()
        assert XENDIT_SECRET not in text and XENDIT_CALLBACK_TOKEN not in text
        assert "credentials_encrypted" not in text
    assert api.get("/v1/gateway-accounts?gateway=xendit").json()["data"][0]["id"] == account_id
    assert api.get("/v1/gateway-accounts?enabled=false").json()["data"] == []


def test_second_enabled_account_for_same_gateway_and_mode_is_409(api):
    assert create(api).status_code == 201
    response = create(api)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "gateway_account_exists"
    assert GatewayAccount.objects.filter(gateway="xendit").count() == 1

    disabled = create(api, {**XENDIT_BODY, "enabled": False})
    assert disabled.status_code == 201
    enable = api.patch(f"/v1/gateway-accounts/{disabled.json()['id']}", {"enabled": True}, format="json")
    assert enable.status_code == 409
    assert GatewayAccount.objects.get(pk=disabled.json()["id"]).enabled is False


def test_another_merchant_or_mode_gets_404(api, client_for):
    account_id = create(api).json()["id"]
    other = client_for(make_api_key(MerchantFactory())[1])
    live = client_for(make_api_key(GatewayAccount.objects.get(pk=account_id).merchant, mode="live")[1])
    for client in (other, live):
        assert client.get(f"/v1/gateway-accounts/{account_id}").status_code == 404
        response = client.patch(f"/v1/gateway-accounts/{account_id}", {"enabled": False}, format="json")
        assert response.status_code == 404
        assert account_id not in client.get("/v1/gateway-accounts").content.decode()
    assert GatewayAccount.objects.get(pk=account_id).enabled is True


def test_live_key_creates_a_live_account(client_for, merchant):
    live = client_for(make_api_key(merchant, mode="live")[1])
    production = {
        **XENDIT_BODY["credentials"],
        "secret_key": XENDIT_SECRET.replace("development", "production"),
    }
    response = create(live, {**XENDIT_BODY, "credentials": production})
    assert response.status_code == 201, response.content
    assert response.json()["mode"] == "live"


@pytest.mark.parametrize(
    "body, param",
    [
        ({**XENDIT_BODY, "credentials": {"secret_key": XENDIT_SECRET}}, "credentials.callback_token"),
        ({**XENDIT_BODY, "credentials": {**XENDIT_BODY["credentials"], "extra": "x"}}, "credentials.extra"),
        ({**XENDIT_BODY, "currencies": ["IDR", "EUR"]}, "currencies.1"),
        ({**XENDIT_BODY, "currencies": ["IDR", "IDR"]}, "currencies.1"),
        ({**XENDIT_BODY, "fees": [{"currency": "MYR", "percent": "0.01"}]}, "fees.0.currency"),
        ({**XENDIT_BODY, "fees": [{"currency": "IDR", "fixed": "0.5"}]}, "fees.0.fixed"),
        ({**XENDIT_BODY, "fees": [{"currency": "IDR", "percent": "1.5"}]}, "fees.0.percent"),
        ({**XENDIT_BODY, "fees": [{"currency": "IDR", "percent": "0.12345"}]}, "fees.0.percent"),
        ({**XENDIT_BODY, "fees": [{"currency": "IDR", "bogus": "1"}]}, "fees.0.bogus"),
        ({**XENDIT_BODY, "gateway": "braintree"}, "gateway"),
        ({**XENDIT_BODY, "surprise": 1}, "surprise"),
        (
            {
                "gateway": "midtrans",
                "credentials": {"server_key": MIDTRANS_SERVER_KEY, "client_key": MIDTRANS_CLIENT_KEY},
                "currencies": ["IDR", "USD"],
            },
            "currencies.1",
        ),
        ({"gateway": "sandbox", "credentials": {"signing_secret": "mine"}}, "credentials"),
    ],
)
def test_invalid_bodies_get_400_with_param_and_write_nothing(api, body, param):
    before = GatewayAccount.objects.count()
    response = create(api, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert GatewayAccount.objects.count() == before


def test_sandbox_accounts_exist_only_in_test_mode(client_for, merchant):
    live = client_for(make_api_key(merchant, mode="live")[1])
    response = live.post("/v1/gateway-accounts", {"gateway": "sandbox"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "gateway_mode_invalid"


def test_patch_merges_credentials_replaces_fees_and_audits_without_secrets(api):
    account_id = create(api).json()["id"]
    response = api.patch(
        f"/v1/gateway-accounts/{account_id}",
        {
            "credentials": {"callback_token": "cbtok_rotated_0000000000000000new1"},
            "fees": [{"currency": "IDR", "percent": "0.01"}],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["credentials_hint"]["callback_token"] == "…new1"
    assert data["fees"] == [{"currency": "IDR", "percent": "0.01", "fixed": "0"}]
    credentials = gateway_account_credentials(account=GatewayAccount.objects.get(pk=account_id))
    assert credentials == {
        "secret_key": XENDIT_SECRET,
        "callback_token": "cbtok_rotated_0000000000000000new1",
    }
    audits = AuditLog.objects.filter(details__gateway_account=account_id).order_by("created_at")
    assert [a.details["operation"] for a in audits] == ["gateway_account.created", "gateway_account.updated"]
    assert audits[1].details["changed"] == ["credentials", "fees"]
    assert XENDIT_SECRET not in json.dumps([a.details for a in audits])


def test_removing_a_currency_that_still_has_a_fee_needs_fees_too(api):
    account_id = create(api).json()["id"]
    response = api.patch(f"/v1/gateway-accounts/{account_id}", {"currencies": ["IDR"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "currencies"
    response = api.patch(
        f"/v1/gateway-accounts/{account_id}",
        {"currencies": ["IDR"], "fees": [{"currency": "IDR", "percent": "0.02"}]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["currencies"] == ["IDR"]


def test_patch_cannot_change_the_gateway(api):
    account_id = create(api).json()["id"]
    response = api.patch(f"/v1/gateway-accounts/{account_id}", {"gateway": "midtrans"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "gateway"


def test_unauthenticated_is_401(client):
    assert client.get("/v1/gateway-accounts").status_code == 401
