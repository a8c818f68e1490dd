"""Argon2id verifications (key-cache misses) are bounded per client address and rolling minute."""

from collections import Counter

import pytest

from apikeys import authentication
from apikeys.models import AuditLog


def _forged(plaintext: str, n: int) -> str:
    return plaintext[:-3] + f"{n:03d}"


@pytest.fixture
def counted_verifications(monkeypatch):
    calls = []
    real = authentication.HASHER

    class CountingHasher:
        def verify(self, stored_hash, plaintext):
            calls.append(plaintext)
            return real.verify(stored_hash, plaintext)

    monkeypatch.setattr(authentication, "HASHER", CountingHasher())
    return calls


@pytest.fixture
def budget_of_3(settings):
    settings.API_KEY_VERIFICATIONS_PER_IP_PER_MINUTE = 3
    settings.RATE_LIMIT_ENABLED = True


@pytest.mark.django_db
def test_past_the_budget_wrong_secrets_get_429_without_argon2(
    api_key, client_for, counted_verifications, budget_of_3
):
    key, plaintext = api_key
    statuses = [client_for(_forged(plaintext, n)).get("/v1/merchant").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert len(counted_verifications) == 3
    response = client_for(_forged(plaintext, 9)).get("/v1/merchant")
    body = response.json()["error"]
    assert body["type"] == "rate_limit_error" and body["code"] == "too_many_verifications"
    assert 1 <= int(response["Retry-After"]) <= 60
    reasons = Counter(
        AuditLog.objects.filter(action=AuditLog.Action.AUTH_FAILED, api_key=key).values_list(
            "details__reason", flat=True
        )
    )
    assert reasons == {"wrong_secret": 3, "too_many_verifications": 3}


@pytest.mark.django_db
def test_a_key_already_verified_in_the_worker_is_not_held_up(
    api_key, client_for, counted_verifications, budget_of_3
):
    _, plaintext = api_key
    good = client_for(plaintext)
    assert good.get("/v1/merchant").status_code == 200  # verified once: 1 of the budget of 3
    for n in range(4):
        client_for(_forged(plaintext, n)).get("/v1/merchant")
    assert len(counted_verifications) == 3
    for _ in range(3):
        assert good.get("/v1/merchant").status_code == 200
    assert len(counted_verifications) == 3


@pytest.mark.django_db
def test_the_budget_is_per_client_address(api_key, client_for, counted_verifications, budget_of_3):
    _, plaintext = api_key
    for n in range(4):
        client_for(_forged(plaintext, n)).get("/v1/merchant", REMOTE_ADDR="203.0.113.5")
    assert client_for(_forged(plaintext, 8)).get("/v1/merchant", REMOTE_ADDR="203.0.113.5").status_code == 429
    assert client_for(plaintext).get("/v1/merchant", REMOTE_ADDR="203.0.113.6").status_code == 200


@pytest.mark.django_db
def test_zero_means_unlimited(api_key, client_for, counted_verifications, settings):
    settings.API_KEY_VERIFICATIONS_PER_IP_PER_MINUTE = 0
    _, plaintext = api_key
    assert {client_for(_forged(plaintext, n)).get("/v1/merchant").status_code for n in range(6)} == {401}
    assert len(counted_verifications) == 6
