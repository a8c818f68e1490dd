import pytest
from rest_framework.test import APIClient

from apikeys.models import AuditLog
from apikeys.services import Actor, api_key_revoke


@pytest.mark.django_db
def test_missing_key_gets_401_in_error_envelope():
    response = APIClient().get("/v1/merchant")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["request_id"] == response["X-Request-Id"]


@pytest.mark.django_db
def test_wrong_secret_gets_401_and_is_audited(api_key, client_for):
    key, plaintext = api_key
    forged = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    response = client_for(forged).get("/v1/merchant")
    assert response.status_code == 401
    row = AuditLog.objects.get(action=AuditLog.Action.AUTH_FAILED)
    assert row.api_key_id == key.id and row.details["reason"] == "wrong_secret"


@pytest.mark.django_db
def test_revoked_key_is_refused_on_the_next_request(api_key, client_for):
    key, plaintext = api_key
    client = client_for(plaintext)
    assert client.get("/v1/merchant").status_code == 200  # now cached as verified
    api_key_revoke(key=key, actor=Actor.system())
    assert client.get("/v1/merchant").status_code == 401


@pytest.mark.django_db
def test_merchant_endpoint_returns_the_callers_merchant(api, merchant):
    response = api.get("/v1/merchant", HTTP_X_REQUEST_ID="my-req-1")
    assert response.status_code == 200
    assert response.json()["id"] == merchant.id
    assert response["X-Request-Id"] == "my-req-1"
