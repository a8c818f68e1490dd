"""The rate limit holds across worker processes: real gunicorn, 3 workers, a limit of 30 per rolling minute."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.apikeys.servers import gunicorn
from tests.factories import MerchantFactory, make_api_key


def _burst(base: str, plaintext: str, total: int = 60, parallel: int = 8) -> list[requests.Response]:
    sessions = [requests.Session() for _ in range(parallel)]

    def one(i: int) -> requests.Response:
        return sessions[i % parallel].get(
            f"{base}/v1/merchant", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
        )

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, range(total)))


def _request_count(metrics_text: str, route: str) -> float:
    pattern = re.compile(
        r"^paytrust_http_request_duration_seconds_count\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M
    )
    return sum(float(m["value"]) for m in pattern.finditer(metrics_text) if f'route="{route}"' in m["labels"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["postgresql", "redis"])
def test_exactly_30_of_60_rapid_requests_succeed_across_3_gunicorn_workers(backend, request):
    env = {"REDIS_URL": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    merchant = MerchantFactory(rate_limit_per_minute=30)
    _, plaintext = make_api_key(merchant)

    with gunicorn(workers=3, env=env) as base:
        responses = _burst(base, plaintext)
        metrics_text = requests.get(f"{base}/metrics", timeout=10).text

    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 30
    assert statuses.count(429) == 30
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == "30"
        assert int(response.headers["X-RateLimit-Reset"]) > 0
    refused = [r for r in responses if r.status_code == 429]
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in refused)
    assert all(r.json()["error"]["type"] == "rate_limit_error" for r in refused)
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in responses if r.status_code == 200) == list(
        range(30)
    )
    # /metrics aggregates every worker process (prometheus_client multiprocess mode).
    assert _request_count(metrics_text, "/v1/merchant") == 60
