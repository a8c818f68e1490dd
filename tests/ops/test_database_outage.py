"""PostgreSQL restarted under load (issue 11 point 11): gunicorn on a private cluster the test starts, 10 clients
creating invoices, `pg_ctl restart -m fast` in the middle. No request answers 500: while the database is away the
answer is 503 `service_unavailable` with Retry-After, pooled connections killed by the restart are replaced when
borrowed (psycopg pool `check`), and the first request after the restart succeeds."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.apikeys.servers import gunicorn
from tests.pgcluster import private_cluster

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 10
SETUP = """
from apikeys.services import Actor, api_key_create
from gateways.services import merchant_onboard
merchant = merchant_onboard(name="Outage")
print("KEY", api_key_create(merchant=merchant, mode="test", actor=Actor.system(), name="load", scopes=[])[1])
"""
BODY = {"currency": "IDR", "line_items": [{"name": "Tea", "quantity": 1, "unit_price": "15000"}]}


def test_a_database_restart_under_load_gives_503s_with_retry_after_and_never_a_500():
    with private_cluster() as cluster:
        url = cluster.create_database("paytrust")
        cluster.manage(url, "migrate", "--no-input")
        key = cluster.manage(url, "shell", stdin=SETUP).split("KEY ", 1)[1].split()[0]
        env = {
            "DATABASE_URL": url,
            "DB_POOL_TIMEOUT": "3",
            "DB_POOL_MAX": "6",
            "DEFAULT_RATE_LIMIT_PER_MINUTE": "100000000",
        }
        with gunicorn(workers=2, env=env) as base:
            results: list[tuple[float, float, int, dict, str]] = []
            lock = threading.Lock()
            stop = threading.Event()

            def client() -> None:
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {key}"
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        response = session.post(f"{base}/v1/invoices", json=BODY, timeout=30)
                        status, headers = response.status_code, dict(response.headers)
                        code = response.json().get("error", {}).get("code", "") if status >= 400 else ""
                    except requests.RequestException as exc:
                        status, headers, code = 0, {}, type(exc).__name__
                    with lock:
                        results.append((started, time.monotonic(), status, headers, code))

            threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(2)
            restart_began = time.monotonic()
            cluster.restart()
            restart_done = time.monotonic()
            time.sleep(3)
            stop.set()
            for thread in threads:
                thread.join(60)

    statuses = [status for *_, status, _, _ in results]
    assert statuses.count(201) > CLIENTS, "the load did not run"
    assert 500 not in statuses
    assert 0 not in statuses, "a request failed at the TCP level: gunicorn must stay up"
    for _, _, status, headers, code in results:
        assert status in (201, 503), (status, code)
        if status == 503:
            assert code == "service_unavailable" and int(headers["Retry-After"]) >= 1
    assert any(started < restart_began for started, *_ in results)
    after = sorted((started, status) for started, _, status, _, _ in results if started > restart_done)
    assert after and after[0][1] == 201, "the first request after the restart must succeed"
    assert all(status == 201 for _, status in after[:CLIENTS]), after[:CLIENTS]


@pytest.mark.urls("tests.ops.urls")
@pytest.mark.parametrize("path", ["/test/database-gone", "/test/plain-database-gone"])
def test_an_unreachable_database_is_a_503_envelope_in_drf_views_and_plain_django_views(api, path):
    from django.test import Client

    client = api if path == "/test/database-gone" else Client(raise_request_exception=False)
    response = client.get(path)
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
    assert "Connection refused" not in response.content.decode()  # no internals in the body


@pytest.mark.urls("tests.ops.urls")
def test_a_503_is_not_stored_under_the_idempotency_key_so_the_retry_runs_the_work(api):
    from tests.ops import urls

    urls.calls["database_gone"] = 0
    first = api.post("/test/database-gone", {}, format="json", HTTP_IDEMPOTENCY_KEY="outage-1")
    assert first.status_code == 503 and first["Retry-After"]
    retry = api.post("/test/database-gone", {}, format="json", HTTP_IDEMPOTENCY_KEY="outage-1")
    assert retry.status_code == 201 and retry.json() == {"work": 2}  # the work ran on the retry
    again = api.post("/test/database-gone", {}, format="json", HTTP_IDEMPOTENCY_KEY="outage-1")
    assert again.status_code == 201 and again.json() == {"work": 2}  # and is now replayed
    assert urls.calls["database_gone"] == 2
