"""The key lookup, the rate limit's hit and the Idempotency-Key's claim in one statement (apikeys/request_start.py)
for a key this process has verified: used when it may be, and never counting or claiming for a key that is
refused (revoked, expired, rotated, merchant disabled) or a request the permission check refuses."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apikeys.models import ApiKey, IdempotencyRecord
from tests.factories import make_api_key

_INVOICE = {
    "currency": "IDR",
    "line_items": [{"name": "Widget", "quantity": 1, "unit_price": "150000", "tax_rate": "0.11"}],
}
ONE_STATEMENT = "WITH valid AS MATERIALIZED"


def _post(client, body, key, path="/v1/invoices"):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _statements(queries) -> list[str]:
    """The statements run, without the savepoints the test's transaction adds around the one statement and the
    invoice's statement (in autocommit there are none)."""
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


def _hits(key_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM apikeys_ratelimithit WHERE bucket = %s", [key_id])
        return cursor.fetchone()[0]


@pytest.fixture
def verified(db, client_for, settings):
    """(merchant, key, client) with the PostgreSQL rate-limit store, after one request verified the key."""
    from gateways.services import merchant_onboard

    settings.REDIS_URL = ""
    merchant = merchant_onboard(name="One statement")
    key, plaintext = make_api_key(merchant)
    client = client_for(plaintext)
    assert _post(client, _INVOICE, "warm-up").status_code == 201  # Argon2id once: the key is now cached
    return merchant, key, client


def test_a_verified_key_is_looked_up_counted_and_claims_in_one_statement(verified):
    merchant, key, client = verified
    before = _hits(key.id)
    with CaptureQueriesContext(connection) as queries:
        created = _post(client, _INVOICE, "fused-1")
    assert created.status_code == 201, created.content
    # key + hit + claim, fee lookup, the invoice's statement (with the replay). Inside the test's transaction the
    # invoice's statement takes a savepoint, and since that transaction could still roll back, the claim is not
    # taken as complete: `dispatch` stores the replay once more (in autocommit: tests/apikeys/test_idempotency.py).
    sql = _statements(queries)
    assert len(sql) == 4 and ONE_STATEMENT in sql[0] and "idempotency_completion AS" in sql[2]
    assert sql[3].lstrip().startswith("UPDATE apikeys_idempotencyrecord")
    assert not [s for s in sql if s.lstrip().startswith("WITH hit AS")]  # no separate hit-and-claim
    assert _hits(key.id) == before + 1
    assert int(created["X-RateLimit-Remaining"]) == int(created["X-RateLimit-Limit"]) - _hits(key.id)
    record = IdempotencyRecord.objects.get(key="fused-1")
    assert (record.merchant_id, record.mode, record.status) == (merchant.id, "test", "completed")
    assert bytes(record.response_body) == created.content
    replay = _post(client, _INVOICE, "fused-1")  # the claim finds the key taken: the stored 201 is replayed
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.content == created.content
    assert _post(client, {**_INVOICE, "currency": "USD"}, "fused-1").status_code == 422  # another body


@pytest.mark.parametrize(
    "change",
    [
        {"revoked_at": timezone.now()},
        {"expires_at": timezone.now() - timedelta(seconds=1)},
        {"secret_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g"},  # rotated
        "merchant_inactive",
    ],
    ids=["revoked", "expired", "rehashed", "merchant-inactive"],
)
def test_a_key_refused_since_its_verification_is_neither_counted_nor_claims(verified, change):
    merchant, key, client = verified
    if change == "merchant_inactive":
        merchant.is_active = False
        merchant.save(update_fields=["is_active"])
    else:
        ApiKey.objects.filter(pk=key.pk).update(**change)
    before = _hits(key.id)
    with CaptureQueriesContext(connection) as queries:
        refused = _post(client, _INVOICE, "after-change")
    assert refused.status_code == 401, refused.content
    assert ONE_STATEMENT in _statements(queries)[0]  # the cached verification was tried...
    assert _hits(key.id) == before  # ...and the row's conditions kept the hit and the claim from happening
    assert not IdempotencyRecord.objects.filter(key="after-change").exists()


def test_the_rate_limit_refuses_in_the_one_statement_and_claims_nothing(verified):
    merchant, key, client = verified
    merchant.rate_limit_per_minute = _hits(key.id) + 1
    merchant.save(update_fields=["rate_limit_per_minute"])
    assert _post(client, _INVOICE, "last-in-window").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        refused = _post(client, _INVOICE, "over-the-limit")
    assert ONE_STATEMENT in _statements(queries)[0]
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused["X-RateLimit-Limit"] == str(merchant.rate_limit_per_minute)
    assert refused["X-RateLimit-Remaining"] == "0"
    assert not IdempotencyRecord.objects.filter(key="over-the-limit").exists()


def test_views_whose_permission_check_can_refuse_a_key_take_the_two_statements(verified, client_for):
    """POST /v1/api-keys needs the admin scope: a merchant key is refused (403) and nothing may be claimed, so
    the one-statement path (which claims before the permission check) is not used there."""
    merchant, key, client = verified
    with CaptureQueriesContext(connection) as queries:
        refused = _post(client, {"mode": "test", "name": "x"}, "not-admin", path="/v1/api-keys")
    assert refused.status_code == 403
    assert not [q for q in queries.captured_queries if ONE_STATEMENT in q["sql"]]
    assert not IdempotencyRecord.objects.filter(key="not-admin").exists()


def test_without_an_idempotency_key_the_hit_is_a_statement_of_its_own(verified):
    merchant, key, client = verified
    with CaptureQueriesContext(connection) as queries:
        assert client.post("/v1/invoices", _INVOICE, format="json").status_code == 201
    assert not [q for q in queries.captured_queries if ONE_STATEMENT in q["sql"]]
    assert _post(client, _INVOICE, "bad\x00key").status_code == 400  # an invalid key: refused as before


def test_with_redis_as_the_limiter_the_hit_is_redis_and_the_claim_a_statement(verified, settings, redis_url):
    merchant, key, client = verified
    settings.REDIS_URL = redis_url
    with CaptureQueriesContext(connection) as queries:
        created = _post(client, _INVOICE, "on-redis")
    assert created.status_code == 201 and created["X-RateLimit-Limit"]
    assert not [
        q
        for q in queries.captured_queries
        if ONE_STATEMENT in q["sql"] or "paytrust_rate_limit_hit" in q["sql"]
    ]
    assert IdempotencyRecord.objects.get(key="on-redis").status == "completed"


def test_a_wrong_secret_for_a_cached_prefix_never_reaches_the_one_statement(verified, client_for):
    """The cached verification is of the presented secret (an HMAC compared in constant time before any SQL): a
    wrong secret with the prefix of a verified key takes the Argon2 path and is refused; nothing counted."""
    merchant, key, client = verified
    plaintext = client._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    wrong = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    before = _hits(key.id)
    with CaptureQueriesContext(connection) as queries:
        refused = _post(client_for(wrong), _INVOICE, "wrong-secret")
    assert refused.status_code == 401
    assert not [q for q in queries.captured_queries if ONE_STATEMENT in q["sql"]]
    assert _hits(key.id) == before and not IdempotencyRecord.objects.filter(key="wrong-secret").exists()


def test_the_x_api_key_header_and_a_zero_limit_take_the_one_statement_with_the_default_limit(
    verified, settings
):
    from rest_framework.test import APIClient

    merchant, key, client = verified
    merchant.rate_limit_per_minute = 0  # 0 or NULL: the default, as merchants.selectors.merchant_rate_limit
    merchant.save(update_fields=["rate_limit_per_minute"])
    header_client = APIClient()
    header_client.credentials(
        HTTP_X_API_KEY=client._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    )
    with CaptureQueriesContext(connection) as queries:
        created = _post(header_client, _INVOICE, "x-api-key")
    assert created.status_code == 201
    assert ONE_STATEMENT in _statements(queries)[0]
    assert created["X-RateLimit-Limit"] == str(settings.DEFAULT_RATE_LIMIT_PER_MINUTE)


def test_is_merchant_admits_every_authenticated_key():
    """The one statement claims before the permission check, which is safe only because the views it is used
    for (IsMerchant alone) cannot refuse an authenticated key: this pins that."""
    from types import SimpleNamespace

    from apikeys.authentication import Principal
    from apikeys.permissions import IsMerchant
    from tests.factories import MerchantFactory

    merchant = MerchantFactory.build()
    for scopes in ([], ["admin"]):
        principal = Principal(key=SimpleNamespace(mode="test", scopes=scopes), merchant=merchant)
        assert IsMerchant().has_permission(SimpleNamespace(user=principal), view=None) is True


@pytest.mark.django_db(transaction=True)
def test_when_the_one_statement_fails_the_request_takes_the_two_statements(client_for, settings):
    """A database error in the one statement (here: the rate-limit function gone) is not the request's answer:
    the key is looked up alone and the hit fails open as before, and the claim is taken by idempotency_begin."""
    from gateways.services import merchant_onboard

    settings.REDIS_URL = ""
    merchant = merchant_onboard(name="Fallback")
    key, plaintext = make_api_key(merchant)
    client = client_for(plaintext)
    assert _post(client, _INVOICE, "warm").status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("ALTER FUNCTION paytrust_rate_limit_hit(text, integer, bigint) RENAME TO test_gone")
    try:
        with CaptureQueriesContext(connection) as queries:
            created = _post(client, _INVOICE, "while-gone")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER FUNCTION test_gone(text, integer, bigint) RENAME TO paytrust_rate_limit_hit"
            )
    assert created.status_code == 201, created.content
    assert ONE_STATEMENT in _statements(queries)[0]  # tried first, then the two statements
    assert "X-RateLimit-Limit" not in created  # the limiter failed open, as it always has
    record = IdempotencyRecord.objects.get(key="while-gone")
    assert record.status == "completed" and bytes(record.response_body) == created.content
