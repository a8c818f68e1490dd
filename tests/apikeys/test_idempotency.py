import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys.idempotency import fingerprint, idempotency_purge
from apikeys.models import ApiKey, IdempotencyRecord
from tests.factories import MerchantFactory, make_api_key
from tests.ops import urls as test_urls


def _post(client, path, body, key, **extra):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


@pytest.fixture(autouse=True)
def _reset_counters():
    test_urls.calls.update(work=0, crash=0)
    test_urls.gate.clear()
    test_urls.entered.clear()
    yield
    test_urls.gate.set()  # never leave a blocked request behind


# --- on a real endpoint: POST /v1/api-keys ----------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_and_body_replays_the_stored_response_without_creating_a_second_key(admin_key, client_for):
    client = client_for(admin_key[1])
    body = {"mode": "test", "name": "replayed"}
    first = _post(client, "/v1/api-keys", body, "create-key-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    count = ApiKey.objects.count()

    again = _post(
        client, "/v1/api-keys", {"name": "replayed", "mode": "test"}, "create-key-1"
    )  # key order differs
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert ApiKey.objects.count() == count  # no work done again
    replayed, original = again.json(), first.json()
    assert replayed["id"] == original["id"]
    # The plaintext key is never stored, so the replay cannot show it.
    assert original["secret"].startswith("pt_test_") and replayed["secret"] is None
    assert {k: v for k, v in replayed.items() if k != "secret"} == {
        k: v for k, v in original.items() if k != "secret"
    }
    record = IdempotencyRecord.objects.get(key="create-key-1")
    assert original["secret"].encode() not in bytes(record.response_body)


@pytest.mark.django_db
def test_same_key_with_a_different_body_gets_422_idempotency_error(admin_key, client_for):
    client = client_for(admin_key[1])
    assert _post(client, "/v1/api-keys", {"mode": "test", "name": "a"}, "k-mismatch").status_code == 201
    count = ApiKey.objects.count()
    response = _post(client, "/v1/api-keys", {"mode": "test", "name": "b"}, "k-mismatch")
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_reused")
    assert ApiKey.objects.count() == count


@pytest.mark.django_db
def test_key_longer_than_255_characters_gets_400(admin_key, client_for):
    client = client_for(admin_key[1])
    response = _post(client, "/v1/api-keys", {"mode": "test"}, "k" * 256)
    assert response.status_code == 400 and response.json()["error"]["code"] == "idempotency_key_invalid"
    assert _post(client, "/v1/api-keys", {"mode": "test"}, "k" * 255).status_code == 201


@pytest.mark.django_db
def test_request_failing_validation_is_not_stored_and_the_key_stays_usable(admin_key, client_for):
    client = client_for(admin_key[1])
    bad = _post(client, "/v1/api-keys", {"mode": "sandbox"}, "k-fix-and-retry")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="k-fix-and-retry").exists()
    good = _post(client, "/v1/api-keys", {"mode": "test"}, "k-fix-and-retry")
    assert good.status_code == 201 and "Idempotent-Replayed" not in good


@pytest.mark.django_db
def test_keys_are_scoped_to_merchant_and_mode(client_for):
    first_merchant, second_merchant = MerchantFactory(), MerchantFactory()
    a = client_for(make_api_key(first_merchant, scopes=["admin"])[1])
    b = client_for(make_api_key(second_merchant, scopes=["admin"])[1])
    a_live = client_for(make_api_key(first_merchant, mode="live", scopes=["admin"])[1])
    body = {"mode": "test", "name": "same"}
    ids = {_post(c, "/v1/api-keys", body, "shared-key").json()["id"] for c in (a, b, a_live)}
    assert len(ids) == 3  # three independent requests, none replayed


@pytest.mark.django_db
def test_post_without_the_header_is_not_deduplicated(admin_key, client_for):
    client = client_for(admin_key[1])
    first = client.post("/v1/api-keys", {"mode": "test"}, format="json").json()["id"]
    second = client.post("/v1/api-keys", {"mode": "test"}, format="json").json()["id"]
    assert first != second and not IdempotencyRecord.objects.exists()


# --- generic behaviour of ApiView, on test-only views ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.urls("tests.ops.urls")
def test_replay_returns_the_stored_status_and_body_byte_for_byte(api):
    first = _post(api, "/test/work", {"name": "x"}, "w-1")
    again = _post(api, "/test/work", {"name": "x"}, "w-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Content-Type"] == first["Content-Type"]
    assert test_urls.calls["work"] == 1
    assert again["X-Request-Id"] != first["X-Request-Id"]  # the replay is its own request
    assert "X-RateLimit-Limit" in again


@pytest.mark.django_db
@pytest.mark.urls("tests.ops.urls")
def test_same_key_on_another_endpoint_is_a_mismatch(api):
    assert _post(api, "/test/work", {"name": "x"}, "w-2").status_code == 201
    assert _post(api, "/test/conflict", {"name": "x"}, "w-2").status_code == 422


@pytest.mark.django_db
@pytest.mark.urls("tests.ops.urls")
def test_a_4xx_after_the_work_is_not_stored_either(api):
    """A service refusing (409 conflict) rolled back its transaction: the retry runs again."""
    assert _post(api, "/test/conflict", {}, "w-3").status_code == 409
    assert _post(api, "/test/conflict", {}, "w-3").status_code == 409
    assert test_urls.calls["work"] == 2
    assert not IdempotencyRecord.objects.filter(key="w-3").exists()


@pytest.mark.django_db
@pytest.mark.urls("tests.ops.urls")
def test_a_500_is_stored_and_replayed_so_a_retry_cannot_double_the_work(api):
    first = _post(api, "/test/crash", {}, "w-4")
    again = _post(api, "/test/crash", {}, "w-4")
    assert first.status_code == again.status_code == 500
    assert again["Idempotent-Replayed"] == "true" and test_urls.calls["crash"] == 1
    assert again.json()["error"]["type"] == "api_error"


@pytest.mark.django_db
@pytest.mark.urls("tests.ops.urls")
def test_stale_in_flight_claim_is_taken_over_by_a_retry(api, settings, merchant):
    """A worker crashed mid-request: its claim stays in_progress. Once older than IDEMPOTENCY_STALE_SECONDS,
    the next retry takes it over and runs the work."""
    path = "/test/work"
    old = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS + 5)
    IdempotencyRecord.objects.create(
        merchant=merchant,
        mode="test",
        key="w-crashed",
        fingerprint=fingerprint(method="POST", path=path, body=b'{"name":"x"}'),
        method="POST",
        path=path,
        created_at=old,
        locked_at=old,
    )
    response = _post(api, path, {"name": "x"}, "w-crashed")
    assert response.status_code == 201 and test_urls.calls["work"] == 1
    record = IdempotencyRecord.objects.get(key="w-crashed")
    assert record.status == "completed" and record.response_status == 201


@pytest.mark.django_db
@pytest.mark.urls("tests.ops.urls")
def test_recent_in_flight_claim_of_a_crashed_worker_still_gets_409(api, merchant):
    path = "/test/work"
    now = timezone.now()
    IdempotencyRecord.objects.create(
        merchant=merchant,
        mode="test",
        key="w-recent",
        fingerprint=fingerprint(method="POST", path=path, body=b'{"name":"x"}'),
        method="POST",
        path=path,
        created_at=now,
        locked_at=now,
    )
    response = _post(api, path, {"name": "x"}, "w-recent")
    assert response.status_code == 409 and response.json()["error"]["type"] == "idempotency_error"
    assert test_urls.calls["work"] == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.ops.urls")
def test_repeat_while_the_first_is_still_running_gets_409_then_replays(merchant):
    """Real concurrency: the first request blocks inside the view (its own thread and DB connection)."""
    _, plaintext = make_api_key(merchant)
    results = {}

    def first_request():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
            results["first"] = _post(client, "/test/slow", {"n": 1}, "slow-1")
        finally:
            close_old_connections()

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        assert test_urls.entered.wait(timeout=30), "the first request never reached the view"
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        concurrent = _post(client, "/test/slow", {"n": 1}, "slow-1")
        assert concurrent.status_code == 409
        error = concurrent.json()["error"]
        assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_request_in_progress")
    finally:
        test_urls.gate.set()
        thread.join(timeout=30)
    assert results["first"].status_code == 201
    replay = _post(client, "/test/slow", {"n": 1}, "slow-1")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.content == results["first"].content
    assert test_urls.calls["work"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.ops.urls")
def test_simultaneous_first_requests_with_one_key_do_the_work_once(merchant):
    """Eight threads send the same new key at the same instant: the UNIQUE constraint lets one in."""
    _, plaintext = make_api_key(merchant)
    barrier = threading.Barrier(8)
    statuses = []

    def send():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
            client.get("/v1/merchant")  # warm the key cache so the POSTs race on the claim, not on Argon2
            barrier.wait()
            statuses.append(_post(client, "/test/slow", {"n": 2}, "race-1").status_code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert test_urls.entered.wait(timeout=30)
    # Everybody but the winner is refused while the winner is inside the view.
    deadline = timezone.now() + timedelta(seconds=30)
    while len(statuses) < 7 and timezone.now() < deadline:
        threading.Event().wait(0.05)
    test_urls.gate.set()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [201] + [409] * 7
    assert test_urls.calls["work"] == 1


@pytest.mark.django_db
def test_purge_deletes_records_past_the_retention_only(merchant, settings):
    now = timezone.now()
    for key, age in (("old", settings.IDEMPOTENCY_RETENTION_HOURS + 1), ("fresh", 1)):
        at = now - timedelta(hours=age)
        IdempotencyRecord.objects.create(
            merchant=merchant,
            mode="test",
            key=key,
            fingerprint="f",
            method="POST",
            path="/",
            created_at=at,
            locked_at=at,
        )
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


# --- the rate limit's hit and the claim in one round trip (PostgreSQL store) ---------------------------------


def _statements(queries, needle: str) -> list[str]:
    return [q["sql"] for q in queries if needle in q["sql"]]


@pytest.fixture
def onboarded(db, client_for):
    """(merchant, client) of a merchant with its sandbox account, so it can create invoices."""
    from gateways.services import merchant_onboard

    merchant = merchant_onboard(name="One trip")
    return merchant, client_for(make_api_key(merchant)[1])


@pytest.mark.django_db
def test_the_hit_and_the_claim_share_one_statement(onboarded, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.REDIS_URL = ""
    api = onboarded[1]
    with CaptureQueriesContext(connection) as queries:
        created = _post(api, "/v1/invoices", _INVOICE, "one-trip")
    assert created.status_code == 201
    hits = _statements(queries.captured_queries, "paytrust_rate_limit_hit")
    assert len(hits) == 1 and "apikeys_idempotencyrecord" in hits[0]
    assert not [
        q
        for q in _statements(queries.captured_queries, "apikeys_idempotencyrecord")
        if q not in hits and q.lstrip().upper().startswith("INSERT")
    ]
    record = IdempotencyRecord.objects.get(key="one-trip")
    assert record.status == IdempotencyRecord.Status.COMPLETED and record.response_status == 201
    replay = _post(api, "/v1/invoices", _INVOICE, "one-trip")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == created.json()["id"]


@pytest.mark.django_db
def test_a_rate_limited_request_claims_nothing(onboarded, settings):
    from apikeys.idempotency import fingerprint, hit_and_claim

    settings.REDIS_URL = ""
    merchant, api = onboarded
    merchant.rate_limit_per_minute = 1
    merchant.save(update_fields=["rate_limit_per_minute"])
    assert _post(api, "/v1/invoices", _INVOICE, "first-in-window").status_code == 201
    refused = _post(api, "/v1/invoices", _INVOICE, "second-in-window")
    assert refused.status_code == 429 and refused["Retry-After"]
    assert not IdempotencyRecord.objects.filter(key="second-in-window").exists()
    # The statement itself inserts no claim for a refused hit (the view would also release one on the 429).
    bucket = ApiKey.objects.get(merchant=merchant).id
    result, claim = hit_and_claim(
        bucket=bucket, limit=1, merchant_id=merchant.id, mode="test", key="third", method="POST",
        path="/v1/invoices", request_fingerprint=fingerprint(method="POST", path="/v1/invoices", body=b"{}"),
    )  # fmt: skip
    assert not result.allowed and claim is None
    assert not IdempotencyRecord.objects.filter(key="third").exists()


@pytest.mark.django_db
def test_a_request_refused_by_the_permission_check_claims_nothing(api, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.REDIS_URL = ""
    with CaptureQueriesContext(connection) as queries:
        refused = _post(api, "/v1/api-keys", {"mode": "test", "name": "not allowed"}, "no-admin-scope")
    assert refused.status_code == 403
    assert not _statements(
        queries.captured_queries, "apikeys_idempotencyrecord"
    )  # never claimed, never released
    assert not IdempotencyRecord.objects.filter(key="no-admin-scope").exists()


_INVOICE = {
    "currency": "IDR",
    "line_items": [{"name": "Widget", "quantity": 1, "unit_price": "150000", "tax_rate": "0.11"}],
}


# --- the response stored by the effect's own statement (POST /v1/invoices, ADR 0024) -------------------------


def _in_atomic_log(connection):
    """(sql, in a transaction block) of every statement the connection runs: in an atomic block, or with
    autocommit off (psycopg would send BEGIN first)."""
    log = []

    def record(execute, sql, params, many, context):
        log.append((sql, connection.in_atomic_block or not connection.get_autocommit()))
        return execute(sql, params, many, context)

    return log, connection.execute_wrapper(record)


@pytest.mark.django_db(transaction=True)
def test_a_new_invoice_and_its_stored_response_are_one_statement(client_for, settings):
    """The 201's replay is a CTE of the invoice's own INSERT statement, which runs in autocommit: one atomic
    write, no BEGIN/COMMIT, no UPDATE of its own."""
    from django.db import connection

    from gateways.services import merchant_onboard

    settings.REDIS_URL = ""
    api = client_for(make_api_key(merchant_onboard(name="Atomic"))[1])
    log, wrapper = _in_atomic_log(connection)
    with wrapper:
        created = _post(api, "/v1/invoices", _INVOICE, "atomic-1")
    assert created.status_code == 201
    inserts = [(sql, block) for sql, block in log if "INSERT INTO" in sql and "invoices_invoice" in sql]
    assert len(inserts) == 1
    sql, in_block = inserts[0]
    assert "idempotency_completion AS (UPDATE apikeys_idempotencyrecord" in sql and not in_block
    assert all(not block for _, block in log)  # no transaction block at all: every statement autocommits
    assert not [s for s, _ in log if s.lstrip().startswith("UPDATE apikeys_idempotencyrecord")]
    record = IdempotencyRecord.objects.get(key="atomic-1")
    assert record.status == IdempotencyRecord.Status.COMPLETED and record.response_status == 201
    assert bytes(record.response_body) == created.content
    assert record.response_headers == {"Content-Type": created["Content-Type"]}
    replay = _post(api, "/v1/invoices", _INVOICE, "atomic-1")
    assert replay["Idempotent-Replayed"] == "true" and replay.content == created.content


@pytest.mark.django_db(transaction=True)
def test_when_the_invoice_rolls_back_at_commit_its_201_is_not_stored(client_for, settings):
    """A deferred check that fails at COMMIT (after the stored response was written) takes both back: no invoice,
    and the key does not replay a 201 for an invoice that does not exist."""
    from django.db import connection

    from gateways.services import merchant_onboard
    from invoices.models import Invoice

    settings.REDIS_URL = ""
    api = client_for(make_api_key(merchant_onboard(name="Rollback"))[1])
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.external_id = 'boom' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER test_refuse_boom AFTER INSERT ON invoices_invoice "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_boom()"
        )
    try:
        failed = _post(api, "/v1/invoices", {**_INVOICE, "external_id": "boom"}, "atomic-2")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_refuse_boom ON invoices_invoice")
            cursor.execute("DROP FUNCTION test_refuse_boom()")
    assert failed.status_code >= 500
    assert not Invoice.objects.filter(external_id="boom").exists()
    # The claim ends as for any failed request (a 5xx stored, a 503 released), never left in progress.
    record = IdempotencyRecord.objects.filter(key="atomic-2").first()
    if failed.status_code == 503:
        assert record is None
    else:
        assert record.status == IdempotencyRecord.Status.COMPLETED
        assert record.response_status == failed.status_code and bytes(record.response_body) == failed.content


@pytest.mark.django_db(transaction=True)
def test_a_supplementary_invoice_and_its_replay_are_one_statement_too(client_for, settings):
    from django.db import connection

    from gateways.services import merchant_onboard
    from invoices.models import Invoice

    settings.REDIS_URL = ""
    api = client_for(make_api_key(merchant_onboard(name="Supplementary"))[1])
    parent = _post(api, "/v1/invoices", _INVOICE, "parent-1").json()["id"]
    path = f"/v1/invoices/{parent}/supplementary"
    log, wrapper = _in_atomic_log(connection)
    with wrapper:
        created = _post(api, path, {"line_items": _INVOICE["line_items"]}, "supplementary-1")
    assert created.status_code == 201, created.content
    (insert,) = [sql for sql, _ in log if "INSERT INTO" in sql and "invoices_invoice" in sql]
    assert "idempotency_completion AS (UPDATE apikeys_idempotencyrecord" in insert
    assert all(not block for _, block in log)
    replay = _post(api, path, {"line_items": _INVOICE["line_items"]}, "supplementary-1")
    assert replay["Idempotent-Replayed"] == "true" and replay.content == created.content
    assert Invoice.objects.filter(parent_invoice_id=parent).count() == 1


def _waiting_on_invoice_lock(cursor) -> int:
    cursor.execute(
        "SELECT count(*) FROM pg_locks WHERE relation = 'invoices_invoice'::regclass AND NOT granted"
    )
    return cursor.fetchone()[0]


def _wait_for(predicate, what: str, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_request_whose_claim_was_taken_over_writes_nothing_and_the_retry_creates_the_invoice_once(
    client_for, settings
):
    """Real concurrency, real connections. Request A claims its key, then stalls (its invoice statement waits on
    a table lock) for longer than IDEMPOTENCY_STALE_SECONDS (its claim is aged); retry B takes the claim over and
    stalls at the same place. When both run, A's statement - the invoice and its stored replay - fails as a
    whole because the claim is no longer A's (409, nothing written); B creates the invoice once."""
    import psycopg
    from django.db import connection

    from gateways.services import merchant_onboard
    from invoices.models import Invoice

    settings.REDIS_URL = ""
    merchant = merchant_onboard(name="Takeover")
    _, plaintext = make_api_key(merchant)
    results = {}

    def request(name):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
            results[name] = _post(client, "/v1/invoices", _INVOICE, "taken-over")
        finally:
            close_old_connections()

    dsn = connection.get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in dsn.items() if k != "cursor_factory"})
    threads = []
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE invoices_invoice IN SHARE MODE")  # INSERTs wait, reads do not
        with psycopg.connect(
            **{k: v for k, v in dsn.items() if k != "cursor_factory"}, autocommit=True
        ) as watch:
            threads.append(threading.Thread(target=request, args=("a",)))
            threads[0].start()
            _wait_for(lambda: _waiting_on_invoice_lock(watch.cursor()) == 1, "A's invoice statement")
            aged = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS + 5)
            assert IdempotencyRecord.objects.filter(key="taken-over").update(locked_at=aged) == 1
            threads.append(threading.Thread(target=request, args=("b",)))
            threads[1].start()
            _wait_for(lambda: _waiting_on_invoice_lock(watch.cursor()) == 2, "B's invoice statement")
        holder.execute("COMMIT")
    finally:
        holder.close()
        for thread in threads:
            thread.join(timeout=30)
    a, b = results["a"], results["b"]
    assert a.status_code == 409, a.content
    assert (a.json()["error"]["type"], a.json()["error"]["code"]) == (
        "idempotency_error",
        "idempotency_request_in_progress",
    )
    assert b.status_code == 201, b.content
    assert list(Invoice.objects.filter(merchant=merchant).values_list("id", flat=True)) == [b.json()["id"]]
    record = IdempotencyRecord.objects.get(key="taken-over")  # A's release left B's record alone
    assert record.status == IdempotencyRecord.Status.COMPLETED and bytes(record.response_body) == b.content
    client = client_for(plaintext)
    replay = _post(client, "/v1/invoices", _INVOICE, "taken-over")
    assert replay["Idempotent-Replayed"] == "true" and replay.content == b.content


@pytest.mark.django_db
def test_a_taken_over_claim_can_neither_complete_nor_release_the_record(merchant, settings):
    """The record is the other request's once taken over: the slow request's late UPDATE and DELETE match
    nothing (they are matched by the claim's locked_at)."""
    from apikeys.idempotency import Claim, idempotency_begin, idempotency_complete, idempotency_release

    path = "/v1/things"
    old = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS + 5)
    record = IdempotencyRecord.objects.create(
        merchant=merchant,
        mode="test",
        key="slow",
        fingerprint=fingerprint(method="POST", path=path, body=b"{}"),
        method="POST",
        path=path,
        created_at=old,
        locked_at=old,
    )
    slow = Claim(record_id=record.pk, locked_at=old)
    retry = idempotency_begin(
        merchant_id=merchant.id, mode="test", key="slow", method="POST", path=path, body=b"{}"
    )
    assert isinstance(retry, Claim) and retry.record_id == record.pk and retry.locked_at > old
    idempotency_release(claim=slow)
    idempotency_complete(claim=slow, status=201, headers={}, body=b'{"slow":1}')
    record.refresh_from_db()
    assert record.status == IdempotencyRecord.Status.IN_PROGRESS and record.locked_at == retry.locked_at
    idempotency_complete(claim=retry, status=201, headers={}, body=b'{"retry":1}')
    record.refresh_from_db()
    assert (
        record.status == IdempotencyRecord.Status.COMPLETED and bytes(record.response_body) == b'{"retry":1}'
    )
