import threading
import time

import pytest
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from apikeys.ratelimit import WINDOW_MS, rate_limit_hit, rate_limit_purge
from paytrust import metrics
from tests.factories import MerchantFactory, make_api_key


@pytest.fixture(params=["postgresql", "redis"])
def backend(request, settings):
    """Run the test against each store."""
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""
    return request.param


def _client(plaintext):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.mark.django_db
def test_over_the_limit_gets_429_with_retry_after_and_envelope(backend):
    merchant = MerchantFactory(rate_limit_per_minute=3)
    _, plaintext = make_api_key(merchant)
    client = _client(plaintext)
    responses = [client.get("/v1/merchant") for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0", "0"]
    assert all(r["X-RateLimit-Limit"] == "3" for r in responses)
    reset = int(responses[0]["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    refused = responses[3]
    assert 1 <= int(refused["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
    assert error["request_id"] == refused["X-Request-Id"]
    assert "Retry-After" not in responses[0]


@pytest.mark.django_db
def test_limit_is_per_key_and_default_comes_from_settings(backend, settings):
    settings.DEFAULT_RATE_LIMIT_PER_MINUTE = 2
    merchant = MerchantFactory()  # no override
    first = _client(make_api_key(merchant)[1])
    second = _client(make_api_key(merchant)[1])
    assert [first.get("/v1/merchant").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/v1/merchant").status_code == 200
    assert second.get("/v1/merchant")["X-RateLimit-Limit"] == "2"


@pytest.mark.django_db
def test_unauthenticated_requests_are_not_counted_against_a_key(backend):
    merchant = MerchantFactory(rate_limit_per_minute=1)
    _, plaintext = make_api_key(merchant)
    assert APIClient().get("/v1/merchant").status_code == 401
    assert _client(plaintext).get("/v1/merchant").status_code == 200


@pytest.mark.django_db
def test_requests_leave_the_window_after_a_minute_postgresql(settings):
    settings.REDIS_URL = ""
    assert [rate_limit_hit(bucket="key_roll", limit=2).allowed for _ in range(3)] == [True, True, False]
    # Age the oldest hit past the window (the same as the clock moving on by a minute for that hit).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE apikeys_ratelimithit SET ts_ms = ts_ms - %s WHERE ctid = "
            "(SELECT ctid FROM apikeys_ratelimithit WHERE bucket = 'key_roll' ORDER BY ts_ms LIMIT 1)",
            [WINDOW_MS],
        )
    result = rate_limit_hit(bucket="key_roll", limit=2)
    assert result.allowed and result.used == 2  # the aged hit no longer counts; only one slot was freed
    assert rate_limit_hit(bucket="key_roll", limit=2).allowed is False


def test_requests_leave_the_window_after_a_minute_redis(settings, redis_url):
    import redis

    settings.REDIS_URL = redis_url
    bucket = f"key_roll_{time.time_ns()}"
    assert [rate_limit_hit(bucket=bucket, limit=2).allowed for _ in range(3)] == [True, True, False]
    store = redis.Redis.from_url(redis_url)
    oldest_member, score = store.zrange(f"paytrust:rl:{bucket}", 0, 0, withscores=True)[0]
    store.zadd(f"paytrust:rl:{bucket}", {oldest_member: score - WINDOW_MS})
    result = rate_limit_hit(bucket=bucket, limit=2)
    assert result.allowed and result.used == 2
    assert rate_limit_hit(bucket=bucket, limit=2).allowed is False


@pytest.mark.django_db
def test_purge_deletes_hits_that_left_the_window_only(settings):
    settings.REDIS_URL = ""
    rate_limit_hit(bucket="key_idle", limit=5)
    rate_limit_hit(bucket="key_busy", limit=5)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE apikeys_ratelimithit SET ts_ms = ts_ms - %s WHERE bucket = 'key_idle'", [WINDOW_MS + 1]
        )
    assert rate_limit_purge() >= 1  # (rows of earlier transactional tests may leave the window too)
    with connection.cursor() as cursor:
        cursor.execute("SELECT bucket FROM apikeys_ratelimithit WHERE bucket IN ('key_idle', 'key_busy')")
        assert [row[0] for row in cursor.fetchall()] == ["key_busy"]


@pytest.mark.django_db
def test_store_failure_fails_open_and_is_counted(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    merchant = MerchantFactory(rate_limit_per_minute=1)
    client = _client(make_api_key(merchant)[1])
    before = metrics.rate_limit_store_errors_total.labels(backend="redis")._value.get()
    assert [client.get("/v1/merchant").status_code for _ in range(2)] == [200, 200]
    after = metrics.rate_limit_store_errors_total.labels(backend="redis")._value.get()
    assert after - before == 2


@pytest.mark.django_db
def test_disabled_rate_limiting_sends_no_headers(settings):
    settings.RATE_LIMIT_ENABLED = False
    merchant = MerchantFactory(rate_limit_per_minute=1)
    client = _client(make_api_key(merchant)[1])
    responses = [client.get("/v1/merchant") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "X-RateLimit-Limit" not in responses[0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_of_one_key_never_exceed_the_limit(backend):
    """Real concurrent connections: 24 threads hit the store at once; exactly `limit` are let through."""
    limit, threads = 10, 24
    barrier = threading.Barrier(threads)
    results = []
    bucket = f"key_concurrent_{time.time_ns()}"

    def hit():
        try:
            barrier.wait()
            results.append(rate_limit_hit(bucket=bucket, limit=limit).allowed)
        finally:
            close_old_connections()

    workers = [threading.Thread(target=hit) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results.count(True) == limit and len(results) == threads


# --- PostgreSQL store: the count is newest number - oldest number in the window + 1 (migration apikeys/0004) ---


def _pg_window(bucket: str) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ts_ms, seq FROM apikeys_ratelimithit WHERE bucket = %s ORDER BY ts_ms, seq", [bucket]
        )
        return cursor.fetchall()


def _age_oldest(bucket: str, count: int) -> None:
    """Move the `count` oldest hits of `bucket` out of the window (as if a minute had passed for them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE apikeys_ratelimithit SET ts_ms = ts_ms - %s WHERE ctid IN (SELECT ctid FROM "
            "apikeys_ratelimithit WHERE bucket = %s ORDER BY ts_ms, seq LIMIT %s)",
            [WINDOW_MS + 1, bucket, count],
        )


def _brute_force_used(bucket: str) -> int:
    """The sliding log's definition: hits of the bucket in (now - window, now], counted one by one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM apikeys_ratelimithit WHERE bucket = %s "
            "AND ts_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - %s",
            [bucket, WINDOW_MS],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_pg_exactly_the_freed_slots_are_reusable_at_the_boundary(settings):
    settings.REDIS_URL = ""
    bucket, limit = "key_boundary", 5
    assert [rate_limit_hit(bucket=bucket, limit=limit).allowed for _ in range(limit)] == [True] * limit
    refused = rate_limit_hit(bucket=bucket, limit=limit)
    assert (refused.allowed, refused.used, refused.remaining) == (False, limit, 0)
    _age_oldest(bucket, 2)  # two hits leave the window: exactly two more requests may pass, not three
    results = [rate_limit_hit(bucket=bucket, limit=limit) for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert [r.used for r in results] == [4, 5, 5]
    # The accepted hits are numbered without gaps and the refused ones are not logged.
    assert [seq for _, seq in _pg_window(bucket)] == list(range(1, limit + 3))


@pytest.mark.django_db
def test_pg_count_matches_the_hits_in_the_window_after_a_purge(settings):
    settings.REDIS_URL = ""
    bucket = "key_purged"
    for _ in range(7):
        rate_limit_hit(bucket=bucket, limit=100)
    _age_oldest(bucket, 4)
    rate_limit_purge()  # deletes the 4 oldest: the numbers left are 5..7
    assert [seq for _, seq in _pg_window(bucket)] == [5, 6, 7]
    result = rate_limit_hit(bucket=bucket, limit=100)
    assert result.allowed and result.used == 4 == _brute_force_used(bucket)
    oldest_ts = _pg_window(bucket)[0][0]
    assert result.reset_ms == oldest_ts + WINDOW_MS  # X-RateLimit-Reset: when the oldest counted hit leaves


@pytest.mark.django_db
def test_pg_a_key_whose_hits_all_left_the_window_starts_afresh(settings):
    settings.REDIS_URL = ""
    bucket = "key_fresh"
    assert [rate_limit_hit(bucket=bucket, limit=2).allowed for _ in range(3)] == [True, True, False]
    _age_oldest(bucket, 2)
    assert [rate_limit_hit(bucket=bucket, limit=2).used for _ in range(2)] == [1, 2]
    rate_limit_purge()
    assert [seq for _, seq in _pg_window(bucket)] == [3, 4]
    _age_oldest(bucket, 2)
    rate_limit_purge()
    assert _pg_window(bucket) == []
    first = rate_limit_hit(bucket=bucket, limit=2)
    assert first.allowed and first.used == 1 and _pg_window(bucket)[0][1] == 1


@pytest.mark.django_db
def test_pg_large_window_is_counted_exactly(settings):
    """Thousands of hits in the window (a high limit): the count is still exact, at and beyond the limit."""
    settings.REDIS_URL = ""
    bucket, limit = "key_large", 3000
    with connection.cursor() as cursor:
        cursor.execute(  # limit - 1 hits, one function call each, without 2999 round trips
            f"DO $$ BEGIN FOR i IN 1..{limit - 1} LOOP "
            f"PERFORM paytrust_rate_limit_hit('{bucket}', {limit}, {WINDOW_MS}); END LOOP; END $$"
        )
    assert _brute_force_used(bucket) == limit - 1
    last = rate_limit_hit(bucket=bucket, limit=limit)
    assert (last.allowed, last.used) == (True, limit)
    assert _brute_force_used(bucket) == limit
    assert rate_limit_hit(bucket=bucket, limit=limit).allowed is False
    _age_oldest(bucket, 1000)
    result = rate_limit_hit(bucket=bucket, limit=limit)
    assert (result.allowed, result.used) == (True, limit - 999)
    assert _brute_force_used(bucket) == limit - 999


@pytest.mark.django_db
def test_pg_a_clock_step_back_never_undercounts(settings):
    """If the database clock steps back, a new hit is logged no earlier than the newest one, so numbers and times
    keep one order and every hit in the window is still counted."""
    settings.REDIS_URL = ""
    bucket = "key_clock"
    for _ in range(3):
        rate_limit_hit(bucket=bucket, limit=10)
    with connection.cursor() as cursor:  # the newest hit looks 5 s in the future: the clock went back 5 s
        cursor.execute(
            "UPDATE apikeys_ratelimithit SET ts_ms = ts_ms + 5000 WHERE bucket = %s AND seq = 3", [bucket]
        )
    result = rate_limit_hit(bucket=bucket, limit=10)
    assert result.allowed and result.used == 4 == _brute_force_used(bucket)
    window = _pg_window(bucket)
    assert [seq for _, seq in window] == [1, 2, 3, 4]
    assert window[3][0] >= window[2][0]
    _age_oldest(bucket, 1)
    assert rate_limit_hit(bucket=bucket, limit=10).used == 4 == _brute_force_used(bucket)


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_pg_a_hit_that_is_its_own_transaction_commits_without_waiting_for_the_flush_and_only_it(settings):
    """Outside a transaction block the hit's statement (alone, or with the key lookup and the Idempotency-Key
    claim) sets synchronous_commit off for its own transaction only: the key's advisory lock is not held across a
    WAL flush. The connection's setting is untouched afterwards; inside a caller's transaction the caller's
    setting is never changed."""
    from django.db import transaction

    from apikeys.ratelimit import RELAXED_COMMIT
    from gateways.services import merchant_onboard

    settings.REDIS_URL = ""
    _, plaintext = make_api_key(merchant_onboard(name="Relaxed"))
    client = _client(plaintext)
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert client.get("/v1/merchant").status_code == 200  # the hit alone
        body = {"currency": "IDR", "line_items": [{"name": "W", "quantity": 1, "unit_price": "1000"}]}
        for n in range(2):  # the second runs the one-statement key lookup + hit + claim (the key is verified)
            created = client.post("/v1/invoices", body, format="json", HTTP_IDEMPOTENCY_KEY=f"relaxed-{n}")
            assert created.status_code == 201, created.content
    hits = [sql for sql in statements if "paytrust_rate_limit_hit" in sql]
    assert len(hits) == 3 and all(RELAXED_COMMIT in sql for sql in hits)
    assert any("idempotency" in sql and "valid" in sql for sql in hits)  # the one-statement path was taken
    assert _synchronous_commit() == "on"

    statements.clear()
    with transaction.atomic(), connection.execute_wrapper(record):
        assert rate_limit_hit(bucket="relaxed-atomic", limit=5).allowed
        assert _synchronous_commit() == "on"
    (hit,) = [sql for sql in statements if "paytrust_rate_limit_hit" in sql]
    assert "synchronous_commit" not in hit
