"""Failed Argon2id verifications are bounded per client address and rolling minute; valid keys never count."""

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
    settings.API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE = 3
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
    assert good.get("/v1/merchant").status_code == 200  # verified once; a success does not count
    for n in range(4):
        client_for(_forged(plaintext, n)).get("/v1/merchant")
    assert (
        len(counted_verifications) == 4
    )  # the valid one, then 3 failures; the 4th wrong secret got no Argon2
    for _ in range(3):
        assert good.get("/v1/merchant").status_code == 200
    assert len(counted_verifications) == 4


@pytest.mark.django_db
def test_the_budget_is_per_client_address(api_key, client_for, counted_verifications, budget_of_3):
    _, plaintext = api_key
    for n in range(4):
        client_for(_forged(plaintext, n)).get("/v1/merchant", REMOTE_ADDR="203.0.113.5")
    assert client_for(_forged(plaintext, 8)).get("/v1/merchant", REMOTE_ADDR="203.0.113.5").status_code == 429
    assert client_for(plaintext).get("/v1/merchant", REMOTE_ADDR="203.0.113.6").status_code == 200


@pytest.mark.django_db
def test_zero_means_unlimited(api_key, client_for, counted_verifications, settings):
    settings.API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE = 0
    _, plaintext = api_key
    assert {client_for(_forged(plaintext, n)).get("/v1/merchant").status_code for n in range(6)} == {401}
    assert len(counted_verifications) == 6


@pytest.mark.django_db
def test_many_new_valid_keys_from_one_address_are_never_refused(
    client_for, counted_verifications, budget_of_3
):
    """A platform serving many merchants from one NAT: every first use of a valid key costs a verification, and
    none of them counts against the address."""
    from tests.factories import MerchantFactory, make_api_key

    keys = [make_api_key(MerchantFactory(name=f"Tenant {n}"))[1] for n in range(8)]
    statuses = [client_for(k).get("/v1/merchant", REMOTE_ADDR="198.51.100.20").status_code for k in keys]
    assert statuses == [200] * 8
    assert len(counted_verifications) == 8


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    api_key, client_for, counted_verifications, budget_of_3, settings
):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    _, plaintext = api_key
    via_proxy = {"REMOTE_ADDR": "10.1.2.3"}
    for n in range(3):  # the attacker, behind our proxy
        client_for(_forged(plaintext, n)).get(
            "/v1/merchant", HTTP_X_FORWARDED_FOR="203.0.113.66", **via_proxy
        )
    attacker = client_for(_forged(plaintext, 7)).get(
        "/v1/merchant", HTTP_X_FORWARDED_FOR="203.0.113.66", **via_proxy
    )
    assert attacker.status_code == 429
    # another client behind the same proxy is not affected, and a spoofed left-most entry changes nothing
    other = client_for(plaintext).get(
        "/v1/merchant", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.1", **via_proxy
    )
    assert other.status_code == 200


@pytest.mark.django_db
def test_without_trusted_proxies_x_forwarded_for_is_ignored(
    api_key, client_for, counted_verifications, budget_of_3, settings
):
    settings.TRUSTED_PROXIES = []
    _, plaintext = api_key
    for n in range(3):  # a client rotating X-Forwarded-For cannot escape its budget
        client_for(_forged(plaintext, n)).get("/v1/merchant", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert (
        client_for(_forged(plaintext, 8)).get("/v1/merchant", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code
        == 429
    )


@pytest.mark.django_db
def test_failures_on_one_key_do_not_hold_up_another_merchants_new_valid_key(
    api_key, client_for, counted_verifications, budget_of_3
):
    """One tenant's typos (or an attack on one known prefix) from a shared NAT address: the other tenants' keys
    from that address still work, even on a cold worker."""
    from tests.factories import MerchantFactory, make_api_key

    _, plaintext = api_key
    for n in range(4):
        client_for(_forged(plaintext, n)).get("/v1/merchant", REMOTE_ADDR="198.51.100.30")
    assert (
        client_for(_forged(plaintext, 9)).get("/v1/merchant", REMOTE_ADDR="198.51.100.30").status_code == 429
    )
    _, other = make_api_key(MerchantFactory(name="Neighbour"))
    assert client_for(other).get("/v1/merchant", REMOTE_ADDR="198.51.100.30").status_code == 200


@pytest.mark.django_db
def test_failures_over_many_keys_from_one_address_are_bounded_too(
    client_for, counted_verifications, budget_of_3
):
    """An attacker who knows many prefixes: at most ten times the bound per address and minute in total."""
    from tests.factories import MerchantFactory, make_api_key

    keys = [make_api_key(MerchantFactory(name=f"Victim {n}"))[1] for n in range(11)]
    statuses = []
    for key in keys:
        for n in range(3):
            statuses.append(
                client_for(_forged(key, n)).get("/v1/merchant", REMOTE_ADDR="203.0.113.77").status_code
            )
    assert statuses.count(401) == 30 and statuses.count(429) == 3
    assert len(counted_verifications) == 30
