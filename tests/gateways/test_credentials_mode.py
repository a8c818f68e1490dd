"""Test and live credentials never cross (issue 11 point 5): a test-mode account refuses a production key and a
live-mode account a sandbox key, on create and on PATCH, through the API and the admin form, with 400 and the
credential named in `param`. Nothing is written."""

import pytest

from gateways.models import GatewayAccount
from gateways.selectors import gateway_account_credentials
from tests.factories import make_api_key
from tests.gateways.conftest import (
    MIDTRANS_CLIENT_KEY,
    MIDTRANS_SERVER_KEY,
    XENDIT_CALLBACK_TOKEN,
    XENDIT_SECRET,
)

pytestmark = pytest.mark.django_db

XENDIT_LIVE_SECRET = XENDIT_SECRET.replace("xnd_development_", "xnd_production_")
MIDTRANS_LIVE_SERVER_KEY = MIDTRANS_SERVER_KEY.removeprefix("SB-")
MIDTRANS_LIVE_CLIENT_KEY = MIDTRANS_CLIENT_KEY.removeprefix("SB-")


def xendit(secret):
    return {
        "gateway": "xendit",
        "credentials": {"secret_key": secret, "callback_token": XENDIT_CALLBACK_TOKEN},
    }


def midtrans(server_key, client_key):
    return {"gateway": "midtrans", "credentials": {"server_key": server_key, "client_key": client_key}}


@pytest.fixture
def live(client_for, merchant):
    return client_for(make_api_key(merchant, mode="live")[1])


@pytest.mark.parametrize(
    "mode, body, param",
    [
        ("test", xendit(XENDIT_LIVE_SECRET), "credentials.secret_key"),
        ("live", xendit(XENDIT_SECRET), "credentials.secret_key"),
        ("test", midtrans(MIDTRANS_LIVE_SERVER_KEY, MIDTRANS_CLIENT_KEY), "credentials.server_key"),
        ("test", midtrans(MIDTRANS_SERVER_KEY, MIDTRANS_LIVE_CLIENT_KEY), "credentials.client_key"),
        ("live", midtrans(MIDTRANS_SERVER_KEY, MIDTRANS_LIVE_CLIENT_KEY), "credentials.server_key"),
        ("live", midtrans(MIDTRANS_LIVE_SERVER_KEY, MIDTRANS_CLIENT_KEY), "credentials.client_key"),
        ("test", xendit("sk_test_not_a_xendit_key_at_all"), "credentials.secret_key"),
    ],
)
def test_create_refuses_a_key_of_the_other_mode(api, live, mode, body, param):
    client = api if mode == "test" else live
    response = client.post("/v1/gateway-accounts", {**body, "currencies": ["IDR"]}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == "credentials_mode_mismatch"
    assert f"{mode}-mode" in error["message"]
    assert not GatewayAccount.objects.filter(gateway=body["gateway"]).exists()


@pytest.mark.parametrize(
    "mode, body",
    [
        ("test", xendit(XENDIT_SECRET)),
        ("live", xendit(XENDIT_LIVE_SECRET)),
        ("test", midtrans(MIDTRANS_SERVER_KEY, MIDTRANS_CLIENT_KEY)),
        ("live", midtrans(MIDTRANS_LIVE_SERVER_KEY, MIDTRANS_LIVE_CLIENT_KEY)),
    ],
)
def test_create_accepts_keys_of_the_accounts_mode(api, live, mode, body):
    client = api if mode == "test" else live
    response = client.post("/v1/gateway-accounts", {**body, "currencies": ["IDR"]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["mode"] == mode


def test_patch_refuses_a_production_key_on_a_test_account_and_keeps_the_old_one(api):
    created = api.post(
        "/v1/gateway-accounts", {**xendit(XENDIT_SECRET), "currencies": ["IDR"]}, format="json"
    )
    account_id = created.json()["id"]
    response = api.patch(
        f"/v1/gateway-accounts/{account_id}",
        {"credentials": {"secret_key": XENDIT_LIVE_SECRET}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "credentials.secret_key"
    account = GatewayAccount.objects.get(pk=account_id)
    assert gateway_account_credentials(account=account)["secret_key"] == XENDIT_SECRET


def test_admin_form_refuses_a_sandbox_key_on_a_live_account(admin_client, merchant):
    response = admin_client.post(
        "/admin/gateways/gatewayaccount/add/",
        {
            "merchant": merchant.pk,
            "mode": "live",
            "gateway": "midtrans",
            "credentials": f'{{"server_key": "{MIDTRANS_SERVER_KEY}", "client_key": "{MIDTRANS_LIVE_CLIENT_KEY}"}}',
            "currencies": "IDR",
            "enabled": "on",
            "metadata": "{}",
            "fees-TOTAL_FORMS": "0",
            "fees-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert b"live-mode midtrans account takes" in response.content
    assert not GatewayAccount.objects.filter(gateway="midtrans").exists()
