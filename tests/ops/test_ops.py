import io
import json
import logging
import re

import pytest
from django.test import Client

from paytrust import metrics, ops
from paytrust.logs import JsonFormatter, RequestContextFilter

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_without_touching_dependencies():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_database_and_migrations():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_is_503_with_pending_migrations(monkeypatch):
    monkeypatch.setattr(ops, "_pending_migrations", lambda connection: 2)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "2 pending"


def test_readyz_is_503_when_the_database_is_unreachable(monkeypatch):
    class Broken:
        alias = "default"

        def cursor(self):
            raise ConnectionError("no route to database")

    monkeypatch.setattr(ops, "connections", {"default": Broken()})
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: ConnectionError"


def _sample(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_has_a_latency_histogram_by_route_and_status(api):
    text = Client().get("/metrics").content.decode()
    before = _sample(text, "paytrust_http_request_duration_seconds_count", route="/v1/merchant", status="200")
    api.get("/v1/merchant")
    api.get("/v1/merchant")
    response = Client().get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    after = _sample(text, "paytrust_http_request_duration_seconds_count", route="/v1/merchant", status="200")
    assert after - before == 2
    assert 'paytrust_http_request_duration_seconds_bucket{le="0.1",method="GET",route="/v1/merchant"' in text
    assert "paytrust_jobs_waiting" in text


def test_unmatched_paths_share_one_route_label():
    Client().get("/v1/random-1")
    Client().get("/v1/random-2")
    text = Client().get("/metrics").content.decode()
    assert "random-1" not in text and 'route="unmatched"' in text


def test_metric_helpers_for_other_apps():
    text = lambda: Client().get("/metrics").content.decode()  # noqa: E731
    calls = _sample(text(), "paytrust_gateway_request_duration_seconds_count", gateway="xendit")
    errors = _sample(text(), "paytrust_gateway_errors_total", gateway="xendit", outcome="timeout")
    deliveries = _sample(text(), "paytrust_webhook_deliveries_total", outcome="succeeded")
    metrics.gateway_call_observed("xendit", 0.2, "ok")
    metrics.gateway_call_observed("xendit", 10.0, "timeout")
    metrics.deliveries_total.labels(outcome="succeeded").inc()
    metrics.delivery_observed("succeeded")
    after = text()
    assert _sample(after, "paytrust_gateway_request_duration_seconds_count", gateway="xendit") - calls == 2
    assert _sample(after, "paytrust_gateway_errors_total", gateway="xendit", outcome="timeout") - errors == 1
    assert _sample(after, "paytrust_webhook_deliveries_total", outcome="succeeded") - deliveries == 2


def test_metric_helpers_never_raise():
    metrics.gateway_call_observed(None, "not a number", object())  # logged, not raised


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger()
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        logger.removeHandler(handler)


def test_access_log_is_one_json_line_with_request_context_and_no_secret(
    api_key, client_for, merchant, log_lines
):
    _, plaintext = api_key
    client_for(plaintext).get("/v1/merchant", HTTP_X_REQUEST_ID="log-req-1")
    access = [line for line in log_lines() if line["logger"] == "paytrust.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "log-req-1" and line["merchant_id"] == merchant.id
    assert line["route"] == "/v1/merchant" and line["status"] == 200 and line["method"] == "GET"
    assert isinstance(line["duration_ms"], float)
    secret_part = plaintext.rsplit("_", 1)[1]
    assert all(secret_part not in json.dumps(entry) for entry in log_lines())


def test_log_formatter_masks_api_keys_and_sensitive_fields(log_lines, api_key):
    _, plaintext = api_key
    logging.getLogger("paytrust.test").warning(
        "got key %s", plaintext, extra={"authorization": f"Bearer {plaintext}", "note": f"key={plaintext}"}
    )
    line = [entry for entry in log_lines() if entry["logger"] == "paytrust.test"][0]
    assert plaintext not in json.dumps(line)
    assert line["authorization"] == "[redacted]"
    assert line["message"].endswith("_[redacted]") and plaintext.rsplit("_", 1)[0] in line["message"]


def test_docs_page_uses_only_local_assets():
    response = Client().get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in asset for asset in assets)
    external = [a for a in assets if re.match(r"^(https?:)?//", a)]
    assert external == []
    assert "cdn" not in html.lower()
    # The referenced assets are actually served by the app (no separate web server needed).
    for asset in assets:
        if asset.startswith("/static/"):
            asset_response = Client().get(asset)
            assert asset_response.status_code == 200, asset
            b"".join(asset_response.streaming_content)


def test_docs_point_at_the_schema_endpoint():
    html = Client().get("/docs").content.decode()
    assert "/v1/schema" in html
