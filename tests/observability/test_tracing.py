"""OpenTelemetry tracing (issue 17, docs/adr/0055-tracing.md): one trace per request with its SQL spans, a span per
gateway call with no secret in it, jobs in the trace of the request that deferred them, trace ids in the logs.

The spans come from the real instrumentations (`paytrust.tracing.configure()`), kept by an in-memory exporter; the
gateway is the local fake Xendit server, the merchant's webhook receiver a local HTTP server, the jobs run on
procrastinate's real worker.
"""

from __future__ import annotations

import base64
import re
import socket

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from procrastinate.contrib.django.models import ProcrastinateJob
from rest_framework.test import APIClient

from gateways.services import merchant_onboard
from paytrust import tracing
from paytrust.jobs import defer_in_transaction
from tests.factories import make_api_key
from tests.gateways.conftest import XENDIT_CALLBACK_TOKEN, XENDIT_SECRET
from tests.observability.conftest import all_attribute_text, hex_trace_id
from tests.payments.factories import make_invoice
from tests.webhooks.conftest import _run_worker_once
from webhooks.outbound.delivery import DELIVER_TASK
from webhooks.outbound.services import endpoint_create
from webhooks.outbound.tasks import OUTBOUND_QUEUE

INVOICE = {
    "currency": "IDR",
    "gateway": "sandbox",
    "customer": {"name": "Budi Santoso", "email": "budi.traced@example.com", "phone": "+628111111111"},
    "line_items": [{"name": "Traced widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"}],
}


@pytest.fixture
def merchant(db):
    """Set up after `spans` (list `spans` first): the test's connection is then a new, traced one."""
    return merchant_onboard(name="Acme")


@pytest.fixture
def db_api(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(merchant_onboard(name='Plain'))[1]}")
    return client


@pytest.fixture
def api_key_plaintext(merchant) -> str:
    return make_api_key(merchant)[1]


@pytest.fixture
def api(api_key_plaintext) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_plaintext}")
    return client


def _server_span(spans):
    (server,) = [span for span in spans.all() if span.kind == SpanKind.SERVER]
    return server


def _descends_from(span, ancestor, by_id: dict) -> bool:
    while span.parent is not None:
        if span.parent.span_id == ancestor.context.span_id:
            return True
        span = by_id.get(span.parent.span_id)
        if span is None:
            return False
    return False


def test_invoice_creation_is_one_trace_of_a_request_span_and_its_sql_spans(spans, api, json_log_lines):
    spans.clear()

    response = api.post("/v1/invoices", INVOICE, format="json")

    assert response.status_code == 201, response.content
    server = _server_span(spans)
    assert server.parent is None  # a trace of its own
    assert server.attributes["http.route"] == "v1/invoices"
    assert server.attributes["http.status_code"] == 201
    assert server.attributes["paytrust.request_id"] == response["X-Request-Id"]
    trace = spans.in_trace(server.context.trace_id)
    assert len(trace) == len(spans.all())  # nothing of this request outside its trace
    by_id = {span.context.span_id: span for span in trace}
    sql = [span for span in trace if span.attributes.get("db.system") == "postgresql"]
    assert any("INSERT INTO" in span.attributes["db.statement"] and "invoices_invoice" in span.attributes[
        "db.statement"] for span in sql)  # fmt: skip
    assert all(span.kind == SpanKind.CLIENT and _descends_from(span, server, by_id) for span in sql)
    # SQL parameters (customer data, amounts) are never recorded, only the statements.
    text = all_attribute_text(trace)
    assert "budi.traced@example.com" not in text and "Traced widget" not in text
    # The access-log line of the request carries its trace and span ids.
    (access,) = [line for line in json_log_lines() if line["logger"] == "paytrust.access"]
    assert access["trace_id"] == hex_trace_id(server)
    assert access["span_id"] == format(server.context.span_id, "016x")
    assert access["request_id"] == response["X-Request-Id"]


def test_payment_initiation_has_a_gateway_span_with_no_secret_in_any_span(
    spans,
    api,
    api_key_plaintext,
    merchant,
    xendit_account,
    xendit_fake,
):
    invoice = make_invoice(merchant, gateway="xendit", amount="250000")
    spans.clear()

    response = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")

    assert response.status_code == 201, response.content
    server = _server_span(spans)
    trace = spans.in_trace(server.context.trace_id)
    gateway = spans.one("gateway xendit create_payment")
    assert gateway.kind == SpanKind.CLIENT
    assert gateway.parent.span_id == server.context.span_id
    assert gateway.attributes["paytrust.gateway"] == "xendit"
    assert gateway.attributes["paytrust.gateway.operation"] == "create_payment"
    assert gateway.attributes["paytrust.gateway.outcome"] == "ok"
    assert gateway.attributes["http.response.status_code"] == 200
    assert gateway.attributes["url.full"] == f"{xendit_fake.base_url}/v2/invoices"
    assert gateway.attributes["paytrust.duration_ms"] >= 0
    # requests' own span is the gateway span's child (the HTTP exchange itself).
    (http,) = [span for span in trace if span.parent and span.parent.span_id == gateway.context.span_id]
    assert http.kind == SpanKind.CLIENT and http.attributes["http.status_code"] == 200
    # No secret anywhere: the gateway's secret key, its Basic-auth form, the callback token, our API key.
    basic = base64.b64encode(f"{XENDIT_SECRET}:".encode()).decode()
    text = all_attribute_text(spans.all())
    for secret in (XENDIT_SECRET, basic, XENDIT_CALLBACK_TOKEN, api_key_plaintext, api_key_plaintext[-32:]):
        assert secret not in text
    assert "authorization" not in text.lower()


def test_gateway_error_marks_the_gateway_span_as_failed(spans, merchant, xendit_account, settings):
    from tests.fakes.xendit import FakeXendit

    invoice = make_invoice(merchant, gateway="xendit")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(merchant)[1]}")
    with FakeXendit(secret_key="another-secret") as fake:  # our key is refused: 401
        settings.XENDIT_API_BASE = fake.base_url
        response = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")

    assert response.status_code == 502, response.content
    gateway = spans.one("gateway xendit create_payment")
    assert gateway.status.status_code == StatusCode.ERROR
    assert gateway.attributes["paytrust.gateway.outcome"] == "gateway_authentication_failed"
    assert gateway.attributes["http.response.status_code"] == 401


def test_deferred_job_runs_in_the_trace_of_the_request_that_deferred_it(
    spans,
    transactional_db,  # the worker uses its own connections: the request's rows must be committed
    api,
    merchant,
    no_jobs,
    webhook_receiver,
    settings,
    json_log_lines,
):
    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE = True
    endpoint_create(
        merchant=merchant, mode="test", url=webhook_receiver.url + "?token=s3cr3t", enabled_events=["*"]
    )
    spans.clear()

    response = api.post("/v1/invoices", INVOICE, format="json")

    assert response.status_code == 201, response.content
    server = _server_span(spans)
    # The job row carries the request's W3C trace context (it survives the queue)...
    (job,) = ProcrastinateJob.objects.filter(task_name=DELIVER_TASK)
    assert job.args["_trace"]["traceparent"].split("-")[1] == hex_trace_id(server)
    spans.clear()

    _run_worker_once(queues=[OUTBOUND_QUEUE])

    # ... and the worker ran the task without it (the delivery went out) in a span under the request's.
    assert webhook_receiver.count() == 1
    assert "traceparent" not in webhook_receiver.requests[0].headers  # our trace ids stay ours
    job_span = spans.one(f"job {DELIVER_TASK}")
    assert job_span.context.trace_id == server.context.trace_id
    assert job_span.parent.span_id == server.context.span_id
    assert job_span.kind == SpanKind.CONSUMER
    assert job_span.attributes["messaging.destination.name"] == OUTBOUND_QUEUE
    delivery = spans.one("webhook delivery")
    assert delivery.parent.span_id == job_span.context.span_id
    assert delivery.attributes["http.response.status_code"] == 200
    assert delivery.attributes["paytrust.delivery.succeeded"] is True
    assert delivery.attributes["url.full"] == webhook_receiver.url  # without the query and its token
    job_trace = spans.in_trace(server.context.trace_id)
    assert any(span.attributes.get("db.system") == "postgresql" for span in job_trace)
    assert "s3cr3t" not in all_attribute_text(spans.all())
    # The job's log lines carry the request's trace id too.
    (attempt,) = [line for line in json_log_lines() if line["message"] == "webhook delivery attempt"]
    assert attempt["trace_id"] == hex_trace_id(server)


def test_sandbox_checkout_token_is_not_in_the_request_span(spans, api, merchant):
    invoice = make_invoice(merchant, amount="150000")
    payment = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()
    token = payment["payment_url"].rstrip("/").rsplit("/", 1)[1]
    spans.clear()

    response = APIClient().get(f"/sandbox/checkout/{token}?ref={token}")

    assert response.status_code == 200
    server = _server_span(spans)
    assert token not in all_attribute_text(spans.all())
    assert server.attributes["http.route"] == "sandbox/checkout/<str:token>"


@pytest.mark.django_db
def test_exporter_down_does_not_break_requests(db_api):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=1)
    tracing.configure(span_processor=BatchSpanProcessor(exporter, schedule_delay_millis=10))
    try:
        responses = [db_api.get("/v1/invoices") for _ in range(3)]
    finally:
        tracing.shutdown()  # flushes to the dead endpoint: fails quietly

    assert [r.status_code for r in responses] == [200, 200, 200]


@pytest.mark.django_db
def test_jobs_deferred_outside_a_trace_carry_no_trace_context():
    from django.db import transaction

    with transaction.atomic():
        (job_id,) = defer_in_transaction(
            DELIVER_TASK, {"delivery_id": "dlv_untraced"}, locks=["dlv_untraced"]
        )

    assert ProcrastinateJob.objects.get(pk=job_id).args == {"delivery_id": "dlv_untraced"}


def test_job_middleware_takes_the_trace_context_out_even_with_tracing_off():
    context = _context_of(
        {"x": 1, "_trace": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
    )

    seen = {}
    tracing.trace_job(lambda: seen.update(context.job.task_kwargs), context, None)

    assert seen == {"x": 1}


def test_url_without_query_drops_query_fragment_and_credentials():
    assert tracing.url_without_query("https://user:pw@api.example.com:8443/v2/x?token=1#frag") == (
        "https://api.example.com:8443/v2/x"
    )


def _context_of(job_kwargs: dict):
    class Job:
        id, task_name, queue, attempts = 7, "webhooks.deliver_webhook", "outbound_webhooks", 1
        task_kwargs = job_kwargs

    class Context:
        job = Job()

    return Context()


def test_a_job_asking_to_be_retried_is_not_a_failed_span_but_a_crash_is(spans):
    from datetime import UTC, datetime

    from paytrust.jobs import RetryLater

    at = datetime(2030, 1, 1, tzinfo=UTC)

    def retry_later():
        raise RetryLater(at, "endpoint busy")

    def crash():
        raise ValueError("boom")

    for call_next, error in ((retry_later, RetryLater), (crash, ValueError)):
        with pytest.raises(error):
            tracing.trace_job(call_next, _context_of({"delivery_id": "dlv_1"}), None)

    retried, crashed = spans.named("job webhooks.deliver_webhook")
    assert retried.status.status_code == StatusCode.UNSET
    assert retried.attributes["paytrust.job.retry_at"] == at.isoformat()
    assert crashed.status.status_code == StatusCode.ERROR
    assert [event.name for event in crashed.events] == ["exception"]
    assert retried.parent is None  # deferred outside a trace: a trace of its own


@pytest.mark.django_db
def test_without_an_exporter_nothing_is_recorded_but_logs_and_jobs_still_carry_the_trace_id(
    json_log_lines, settings
):
    """The default (no OTEL_EXPORTER_OTLP_ENDPOINT): unrecorded spans, whose ids still reach logs and jobs."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE = True
    merchant = merchant_onboard(name="Quiet")
    endpoint_create(merchant=merchant, mode="test", url="http://127.0.0.1:9/hook", enabled_events=["*"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(merchant)[1]}")
    exporter = InMemorySpanExporter()
    tracing.configure(span_processor=SimpleSpanProcessor(exporter), record=False)
    try:
        response = client.post("/v1/invoices", INVOICE, format="json")
    finally:
        tracing.shutdown()

    assert response.status_code == 201, response.content
    assert exporter.get_finished_spans() == ()  # nothing recorded, nothing to export
    (access,) = [line for line in json_log_lines() if line["logger"] == "paytrust.access"]
    assert re.fullmatch(r"[0-9a-f]{32}", access["trace_id"]) and access["trace_id"] != "0" * 32
    (job,) = ProcrastinateJob.objects.filter(
        task_name=DELIVER_TASK, args__delivery_id__isnull=False
    ).order_by("-id")[:1]
    _version, trace_id, _span_id, flags = job.args["_trace"]["traceparent"].split("-")
    assert trace_id == access["trace_id"]
    assert int(flags, 16) & 1 == 0  # the same trace, marked not sampled


def test_without_recording_sql_is_not_instrumented():
    """Unrecorded (the default), a span per SQL statement could never be seen: psycopg is left uninstrumented and
    the hand-built cursors (paytrust/sql.py) are the plain class - the hot path pays for no span it cannot use.
    Recorded, both are traced."""
    from django.conf import settings
    from django.db.backends.postgresql.base import ServerBindingCursor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    django_middleware = "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
    tracing.configure(span_processor=SimpleSpanProcessor(InMemorySpanExporter()), record=False)
    try:
        assert not PsycopgInstrumentor().is_instrumented_by_opentelemetry
        assert tracing.traced_cursor_class(ServerBindingCursor) is ServerBindingCursor
        # the request's span by our light middleware, not the Django instrumentation's (URL resolved twice)
        assert settings.MIDDLEWARE[0] == "paytrust.tracing.UnrecordedRequestSpanMiddleware"
        assert django_middleware not in settings.MIDDLEWARE
    finally:
        tracing.shutdown()
    assert "paytrust.tracing.UnrecordedRequestSpanMiddleware" not in settings.MIDDLEWARE
    tracing.configure(span_processor=SimpleSpanProcessor(InMemorySpanExporter()))
    try:
        assert PsycopgInstrumentor().is_instrumented_by_opentelemetry
        assert tracing.traced_cursor_class(ServerBindingCursor) is not ServerBindingCursor
        assert settings.MIDDLEWARE[0] == django_middleware
    finally:
        tracing.shutdown()


@pytest.mark.django_db
def test_without_recording_the_callers_traceparent_is_continued(json_log_lines):
    """Unrecorded, a request that arrives with a W3C traceparent stays in the caller's trace (its log lines carry
    the caller's trace id); a probe URL gets no span."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(merchant_onboard(name='Caller'))[1]}")
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    tracing.configure(span_processor=SimpleSpanProcessor(InMemorySpanExporter()), record=False)
    try:
        response = client.post(
            "/v1/invoices", INVOICE, format="json", HTTP_TRACEPARENT=f"00-{caller_trace}-00f067aa0ba902b7-01"
        )
        own = client.post("/v1/invoices", {**INVOICE, "external_id": "own-trace"}, format="json")
        probe = client.get("/healthz")
    finally:
        tracing.shutdown()

    assert response.status_code == 201 and own.status_code == 201 and probe.status_code == 200
    access = [line for line in json_log_lines() if line["logger"] == "paytrust.access"]
    assert [line["trace_id"] for line in access[:1]] == [caller_trace]
    assert re.fullmatch(r"[0-9a-f]{32}", access[1]["trace_id"]) and access[1]["trace_id"] != caller_trace
    assert not access[2].get("trace_id")


def test_sql_outside_any_request_or_job_starts_no_trace_but_our_gateway_calls_do(spans, merchant):
    from django.db import connection

    from gateways.http import GatewayHttp

    spans.clear()
    with connection.cursor() as cursor:  # e.g. the worker's polling, a migration, a command
        cursor.execute("SELECT 1")
    http = GatewayHttp(
        gateway="xendit", account_id="gwa_x", base_url="http://127.0.0.1:9", auth=("k", ""), timeout=0.2
    )
    with pytest.raises(Exception):  # noqa: B017 - nothing listens there: a connection error
        http.request("GET", "/v2/invoices", operation="get_status")

    assert not any(span.attributes.get("db.system") for span in spans.all())
    assert [span.name for span in spans.all() if span.parent is None] == ["gateway xendit get_status"]
