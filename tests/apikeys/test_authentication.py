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


@pytest.mark.django_db
def test_x_api_key_header_works(api_key):
    response = APIClient().get("/v1/merchant", HTTP_X_API_KEY=api_key[1])
    assert response.status_code == 200


@pytest.mark.django_db
def test_unknown_key_is_401_and_audited_with_ip_user_agent_and_request_id():
    from apikeys.services import generate_key

    plaintext, _ = generate_key("test")
    response = APIClient().get(
        "/v1/merchant",
        HTTP_AUTHORIZATION=f"Bearer {plaintext}",
        HTTP_USER_AGENT="evil/1.0",
        HTTP_X_REQUEST_ID="req-unknown-1",
        REMOTE_ADDR="198.51.100.7",
    )
    assert response.status_code == 401
    row = AuditLog.objects.get(action=AuditLog.Action.AUTH_FAILED)
    assert (row.ip, row.user_agent, row.request_id, row.details["reason"]) == (
        "198.51.100.7",
        "evil/1.0",
        "req-unknown-1",
        "unknown_key",
    )
    assert plaintext not in str(row.details)


@pytest.mark.django_db
def test_rotated_away_key_is_refused_on_the_next_request(api_key, client_for):
    from apikeys.services import api_key_rotate

    key, plaintext = api_key
    client = client_for(plaintext)
    assert client.get("/v1/merchant").status_code == 200
    new, new_plaintext = api_key_rotate(key=key, actor=Actor.system())
    assert client.get("/v1/merchant").status_code == 401
    assert client_for(new_plaintext).get("/v1/merchant").status_code == 200


@pytest.mark.django_db
def test_argon2_is_verified_once_then_the_cached_digest_is_used(api_key, client_for, monkeypatch):
    from apikeys import authentication

    calls = []
    real = authentication.HASHER

    class CountingHasher:
        def verify(self, stored_hash, plaintext):
            calls.append(1)
            return real.verify(stored_hash, plaintext)

    monkeypatch.setattr(authentication, "HASHER", CountingHasher())
    client = client_for(api_key[1])
    for _ in range(5):
        assert client.get("/v1/merchant").status_code == 200
    assert len(calls) == 1
    # A wrong secret with the same prefix never matches the cached entry: it pays for Argon2 and fails.
    forged = api_key[1][:-1] + ("A" if api_key[1][-1] != "A" else "B")
    assert client_for(forged).get("/v1/merchant").status_code == 401
    assert len(calls) == 2


@pytest.mark.django_db
def test_key_of_a_deactivated_merchant_is_refused(api_key, client_for, merchant):
    client = client_for(api_key[1])
    assert client.get("/v1/merchant").status_code == 200
    merchant.is_active = False
    merchant.save()
    assert client.get("/v1/merchant").status_code == 401


@pytest.mark.django_db
def test_last_used_at_is_recorded_at_most_once_a_minute(api_key, client_for):
    key, plaintext = api_key
    client = client_for(plaintext)
    client.get("/v1/merchant")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    client.get("/v1/merchant")
    key.refresh_from_db()
    assert key.last_used_at == first
