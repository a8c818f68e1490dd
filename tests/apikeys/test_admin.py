import re

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from rest_framework.test import APIClient

from apikeys.models import ApiKey, AuditLog
from merchants.models import Merchant

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    get_user_model().objects.create_superuser(username="alice", email="", password="correct horse battery")
    client = Client()
    assert client.login(username="alice", password="correct horse battery")
    return client


def _key_client(plaintext):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_staff_login_through_the_login_page():
    get_user_model().objects.create_superuser(username="bob", email="", password="s3cret-pass-phrase")
    client = Client()
    assert client.get("/admin/").status_code == 302  # to the login page
    page = client.get("/admin/login/")
    assert page.status_code == 200
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "bob", "password": "s3cret-pass-phrase", "next": "/admin/"}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/admin/merchants/merchant/",
        "/admin/apikeys/apikey/",
        "/admin/apikeys/auditlog/",
        "/admin/apikeys/apikey/add/",
    ],
)
def test_admin_pages_render(staff, merchant, api_key, url):
    assert staff.get(url).status_code == 200


def test_creating_a_key_in_the_admin_shows_the_plaintext_once_and_audits_the_user(staff, merchant):
    response = staff.post(
        "/admin/apikeys/apikey/add/",
        {"merchant": merchant.id, "name": "from admin", "mode": "test", "scopes": []},
        follow=True,
    )
    assert response.status_code == 200 and response.redirect_chain, response.content.decode()[:2000]
    key = ApiKey.objects.get(name="from admin")
    plaintext = re.search(r"(pt_test_[A-Za-z0-9]{12}_[A-Za-z0-9]{32})", response.content.decode()).group(1)
    assert plaintext.startswith(key.prefix) and key.secret_hash.startswith("$argon2id$")
    assert _key_client(plaintext).get("/v1/merchant").status_code == 200
    row = AuditLog.objects.get(action=AuditLog.Action.KEY_CREATED, api_key=key)
    assert row.actor == "user:alice"
    # The change page never shows the secret again.
    assert plaintext not in staff.get(f"/admin/apikeys/apikey/{quote(key.id)}/change/").content.decode()


def test_revoke_action_calls_the_service(staff, api_key):
    key, plaintext = api_key
    client = _key_client(plaintext)
    assert client.get("/v1/merchant").status_code == 200
    response = staff.post(
        "/admin/apikeys/apikey/", {"action": "revoke_keys", "_selected_action": [key.id]}, follow=True
    )
    assert response.status_code == 200
    assert client.get("/v1/merchant").status_code == 401
    assert AuditLog.objects.get(action=AuditLog.Action.KEY_REVOKED, api_key=key).actor == "user:alice"


def test_rotate_action_shows_the_new_plaintext_and_the_old_key_stops(staff, api_key):
    key, plaintext = api_key
    response = staff.post("/admin/apikeys/apikey/", {"action": "rotate_keys", "_selected_action": [key.id]})
    texts = " ".join(str(message) for message in get_messages(response.wsgi_request))
    new_plaintext = re.search(r"(pt_test_[A-Za-z0-9]{12}_[A-Za-z0-9]{32})", texts).group(1)
    assert _key_client(plaintext).get("/v1/merchant").status_code == 401
    assert _key_client(new_plaintext).get("/v1/merchant").status_code == 200
    assert AuditLog.objects.get(action=AuditLog.Action.KEY_ROTATED, api_key=key).actor == "user:alice"


def test_audit_log_is_read_only_in_the_admin(staff, api_key):
    row = AuditLog.objects.first()
    assert staff.get("/admin/apikeys/auditlog/add/").status_code == 403
    assert staff.post(f"/admin/apikeys/auditlog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    page = staff.get("/admin/apikeys/auditlog/?action__exact=api_key.created").content.decode()
    assert quote(row.pk) in page
    assert (
        quote(row.pk) not in staff.get("/admin/apikeys/auditlog/?action__exact=auth.failed").content.decode()
    )


def test_merchant_admin_creates_through_the_service_and_audits_changes(staff):
    response = staff.post(
        "/admin/merchants/merchant/add/",
        {
            "name": "Toko Admin",
            "is_active": "on",
            "rate_limit_per_minute": "60",
            "legal_name": "PT Toko Admin",
            "country": "id",
            "account_iban": "",
            "account_number": "1234567890",
            "bank_bic": "bmriidja",
            "bank_name": "Bank Mandiri",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    merchant = Merchant.objects.get(name="Toko Admin")
    assert (merchant.country, merchant.bank_bic, merchant.rate_limit_per_minute) == ("ID", "BMRIIDJA", 60)
    assert merchant.gateway_accounts.filter(gateway="sandbox").exists()  # merchant_onboard ran
    created = AuditLog.objects.get(merchant=merchant, details__operation="merchant.created")
    assert created.actor == "user:alice"

    response = staff.post(
        f"/admin/merchants/merchant/{quote(merchant.id)}/change/",
        {
            "name": "Toko Admin",
            "is_active": "on",
            "rate_limit_per_minute": "90",
            "legal_name": "PT Toko Admin",
            "country": "ID",
            "account_iban": "",
            "account_number": "1234567890",
            "bank_bic": "BMRIIDJA",
            "bank_name": "Bank Mandiri",
        },
    )
    assert response.status_code == 302
    updated = AuditLog.objects.get(merchant=merchant, details__operation="merchant.updated")
    assert updated.details["fields"] == ["rate_limit_per_minute"] and updated.actor == "user:alice"


def test_merchant_admin_shows_service_validation_errors_on_the_form(staff):
    response = staff.post(
        "/admin/merchants/merchant/add/", {"name": "X", "is_active": "on", "country": "IDN"}
    )
    assert response.status_code == 200  # the form again, with the error
    assert not Merchant.objects.filter(name="X").exists()
