"""OpenTelemetry tracing: one trace per request and per job, a span per gateway call and per webhook delivery.

`configure()` is called once per process by the entry points (paytrust/wsgi.py, paytrust/asgi.py, manage.py, so
also `manage.py procrastinate worker`). It builds the SDK's TracerProvider and turns on the Django (a server span
per request), psycopg (a span per SQL statement, without its parameters; only when spans are recorded) and requests (a client span per gateway
HTTP call) instrumentations. Environment (the OpenTelemetry SDK's own variables):
- OTEL_SDK_DISABLED=true: no tracing at all (nothing instrumented, no trace id in the logs).
- OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set: spans are recorded and exported over
  OTLP (http/protobuf) by a batch span processor. Unset (the default): nothing is recorded or exported, but every
  request and job still gets its trace id (unrecorded spans, sampler ALWAYS_OFF), so the logs and the jobs carry
  it, at a fraction of the cost of recording (bench/README.md, "Tracing overhead").
- OTEL_SERVICE_NAME (default "paytrust"), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG): as the SDK reads them.

Tracing never breaks a request or a job: an exporter that is down only loses spans (the batch processor exports
in its own thread and drops what does not fit its queue), and every helper here swallows its own errors.

Jobs (paytrust/jobs.py): `defer_in_transaction` puts the W3C trace context of the deferring request or job into
the job's kwargs under `_trace` (it survives the queue: it is stored in the job's row); `trace_job` and
`trace_job_async`, procrastinate task middlewares (settings.PROCRASTINATE_WORKER_DEFAULTS), take it out again
before the task runs and run the task in a span whose parent is that context, so a job's spans carry the trace
id of the request that deferred it. A job deferred without one (periodic jobs) starts its own trace.

Never recorded: headers, credentials, request or response bodies, query strings (URLs are recorded without them),
SQL parameters, and path segments that are secrets (the sandbox checkout token).

This module imports only the OpenTelemetry API at import time (settings.py imports the job middlewares); the
SDK and the instrumentations are imported by `configure()`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

logger = logging.getLogger("paytrust.tracing")

TRACER_NAME = "paytrust"
# The job kwarg that carries the deferring request's trace context (a W3C `traceparent`, maybe a `tracestate`).
TRACE_KWARG = "_trace"
# Requests that get no span: probes and scrapes (regexes searched in the URL, as OTEL_PYTHON_DJANGO_EXCLUDED_URLS).
DEFAULT_EXCLUDED_URLS = "/healthz,/readyz,/metrics"
# URL path parameters (Django URL kwargs) whose value is a secret: replaced in the span's URL attributes.
_SECRET_PARAM = re.compile(r"(token|secret|password|key)$", re.I)
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")

_state: dict[str, Any] = {"provider": None, "instrumentors": [], "cursor_classes": {}, "trace_sql": False}
_lock = threading.Lock()


# --- set-up ----------------------------------------------------------------------------------------------


def _disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def configure(*, span_processor=None, record: bool | None = None):
    """Set up tracing for this process (idempotent). Returns the TracerProvider, or None when disabled.

    `span_processor`: use this processor (tests: a SimpleSpanProcessor over an InMemorySpanExporter) instead of
    the environment's choice; the provider is then not made the process-wide default, and `shutdown()` undoes
    everything. `record`: whether spans are recorded; by default only when they go somewhere (an OTLP endpoint
    or `span_processor`). Unrecorded spans still have their trace and span ids, so the logs and the jobs carry
    them, at a fraction of the cost (the instrumentations skip their attributes)."""
    from django.conf import settings

    settings.DEBUG  # noqa: B018 - loads settings.py first, which puts the .env file's OTEL_* into the environment
    with _lock:
        if _state["provider"] is not None:
            return _state["provider"]
        if _disabled():
            return None
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

        exporting = bool(
            os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
        if record is None:
            record = exporting or span_processor is not None
        resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or "paytrust"})
        # OTEL_TRACES_SAMPLER, when set, is the SDK's to read (sampler=None); else ours.
        sampler = None
        if not os.environ.get("OTEL_TRACES_SAMPLER"):
            sampler = _default_sampler() if record else ALWAYS_OFF
        provider = TracerProvider(resource=resource, sampler=sampler)
        if span_processor is not None:
            provider.add_span_processor(span_processor)
        elif exporting:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if span_processor is None:
            trace.set_tracer_provider(provider)
        _state["instrumentors"] = _instrument(provider, trace_sql=record)
        _state["provider"] = provider
        _state["trace_sql"] = record
        return provider


# Root spans of kind CLIENT that may start a trace: our own outgoing calls (a gateway call or a delivery made
# outside a request or job, e.g. by a management command).
_OWN_CLIENT_SPANS = ("gateway ", "webhook delivery")


def _default_sampler():
    """Every request and job is traced (parent-based, always on), but an outgoing call outside any request or job
    does not start a trace of its own unless it is one of ours: the worker's queue polling, LISTEN and heartbeats,
    migrations and commands would otherwise send one single-span trace per SQL statement. (The instrumentations
    start their spans before setting attributes, so the span's kind and name are all a sampler can go by.)"""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult

    class RootSampler(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, **kw):
            if kind == SpanKind.CLIENT and not name.startswith(_OWN_CLIENT_SPANS):
                return SamplingResult(Decision.DROP)
            return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links)

        def get_description(self) -> str:
            return "PayTrustRoot(no orphan client spans)"

    return ParentBased(root=RootSampler())


def _instrument(provider, *, trace_sql: bool) -> list:
    """Recorded (`trace_sql`): the Django (request span with its attributes), psycopg (a span per statement) and
    requests instrumentations. Unrecorded (the default): only requests' (gateway calls carry a traceparent) and
    `UnrecordedRequestSpanMiddleware` for the request's span. An unrecorded span can never be seen: all that counts
    is that the request's trace id reaches its log lines and the jobs it defers. The Django instrumentation still
    resolved the URL again for the span's name and built the absolute URI three times per request, and psycopg's
    wrapped every statement in a span: together ~13 % of an invoice creation's Python time under load
    (bench/README.md, "Where the time goes")."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentors: list = []
    if trace_sql:
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        django = DjangoInstrumentor()
        django.instrument(
            tracer_provider=provider,
            excluded_urls=os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS),
            request_hook=_django_request_hook,
            response_hook=_django_response_hook,
        )
        # Parameters are never captured (capture_parameters stays False): they hold customer data.
        psycopg = PsycopgInstrumentor()
        psycopg.instrument(tracer_provider=provider)
        instrumentors += [django, psycopg]
    else:
        instrumentors.append(_UnrecordedRequestSpans())
    requests = RequestsInstrumentor()
    requests.instrument(tracer_provider=provider, request_hook=_requests_hook)
    return [*instrumentors, requests]


class _UnrecordedRequestSpans:
    """Puts `UnrecordedRequestSpanMiddleware` first in settings.MIDDLEWARE (as the Django instrumentation does
    with its own), and takes it out again."""

    path = "paytrust.tracing.UnrecordedRequestSpanMiddleware"

    def __init__(self) -> None:
        from django.conf import settings

        middleware = list(settings.MIDDLEWARE)
        if self.path not in middleware:
            settings.MIDDLEWARE = [self.path, *middleware]

    def uninstrument(self) -> None:
        from django.conf import settings

        settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != self.path]


class UnrecordedRequestSpanMiddleware:
    """The request's span when spans are not recorded: a SERVER span, child of the caller's W3C `traceparent` if
    it sent one (same trace id), current while the request runs, so every log line and every deferred job of the
    request carries its trace id. Nothing else: its name and attributes could never be seen. The URLs in
    OTEL_PYTHON_DJANGO_EXCLUDED_URLS (default /healthz, /readyz, /metrics) get none, as with the instrumentation."""

    def __init__(self, get_response) -> None:
        from opentelemetry.instrumentation.wsgi import wsgi_getter
        from opentelemetry.util.http import parse_excluded_urls

        self.get_response = get_response
        self.getter = wsgi_getter
        self.excluded = parse_excluded_urls(
            os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
        )
        self.tracer, self.provider = tracer(), _state["provider"]

    def __call__(self, request):
        # A handler built while tracing was unrecorded keeps this middleware after tracing was reconfigured (a
        # test's recorded tracing, shutdown): then the Django instrumentation's span, or none, is the request's.
        provider = _state["provider"]
        if provider is None or _state["trace_sql"] or self.excluded.url_disabled(request.path):
            return self.get_response(request)
        if provider is not self.provider:
            self.tracer, self.provider = tracer(), provider
        parent = propagate.extract(request.META, getter=self.getter)
        with self.tracer.start_as_current_span("HTTP request", context=parent, kind=SpanKind.SERVER):
            return self.get_response(request)


def shutdown() -> None:
    """Undo `configure()`: remove the instrumentations and shut the provider down (flushes its processor)."""
    with _lock:
        for instrumentor in reversed(_state["instrumentors"]):
            instrumentor.uninstrument()
        provider = _state["provider"]
        _state.update(provider=None, instrumentors=[], cursor_classes={}, trace_sql=False)
    if provider is not None:
        provider.shutdown()


def traced_cursor_class(base: type) -> type:
    """`base` (a psycopg cursor class) with a span per statement, made by the psycopg instrumentation exactly as
    for the cursors of the connections it wraps; `base` itself when tracing is off. For cursors built by hand
    (paytrust/sql.py's server-binding cursors), which the connection's cursor factory does not make. Also `base`
    when spans are not recorded (SQL is then not instrumented at all, see `_instrument`)."""
    provider = _state["provider"]
    if provider is None or not _state["trace_sql"]:
        return base
    traced = _state["cursor_classes"].get(base)
    if traced is None:
        try:
            from opentelemetry.instrumentation.psycopg import _new_cursor_factory

            traced = _new_cursor_factory(base_factory=base, tracer_provider=provider)
        except Exception:  # noqa: BLE001 - an instrumentation without it: untraced statements, working code
            logger.warning("tracing: cannot trace hand-built cursors", exc_info=True)
            traced = base
        _state["cursor_classes"][base] = traced
    return traced


def tracer() -> trace.Tracer:
    """PayTrust's own tracer (gateway calls, deliveries, jobs): the configured provider's, else a no-op one."""
    return trace.get_tracer(TRACER_NAME, tracer_provider=_state["provider"] or trace.get_tracer_provider())


# --- redaction -------------------------------------------------------------------------------------------


def url_without_query(url: str) -> str:
    """The URL without its query string, fragment and user:password part (they may carry secrets)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return ""


def _scrub_url_attributes(span, redact: Mapping[str, str] | None = None) -> None:
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if not isinstance(value, str):
            continue
        clean = value.split("?", 1)[0] if name == "http.target" else url_without_query(value)
        for secret in (redact or {}).values():
            clean = clean.replace(secret, "[redacted]")
        span.set_attribute(name, clean)


def _django_request_hook(span, request) -> None:
    try:
        if span.is_recording():
            _scrub_url_attributes(span)
    except Exception:  # noqa: BLE001 - tracing must never break a request
        logger.debug("tracing: request hook failed", exc_info=True)


def _django_response_hook(span, request, response) -> None:
    """Secrets in the path (e.g. /sandbox/checkout/<token>) are replaced; the request id links span and logs."""
    try:
        if not span.is_recording():
            return
        match = getattr(request, "resolver_match", None)
        secrets = {
            name: str(value)
            for name, value in (match.kwargs.items() if match else ())
            if _SECRET_PARAM.search(name) and value
        }
        if secrets:
            _scrub_url_attributes(span, secrets)
        request_id = getattr(request, "request_id", None)
        if request_id:
            span.set_attribute("paytrust.request_id", request_id)
    except Exception:  # noqa: BLE001
        logger.debug("tracing: response hook failed", exc_info=True)


def _requests_hook(span, request) -> None:
    try:
        if span.is_recording():
            _scrub_url_attributes(span)
    except Exception:  # noqa: BLE001
        logger.debug("tracing: requests hook failed", exc_info=True)


# --- spans of our own ------------------------------------------------------------------------------------


@contextmanager
def client_span(name: str, attributes: Mapping[str, Any]) -> Iterator[trace.Span]:
    """A CLIENT span around an outgoing call (gateway, webhook delivery); records its duration in ms. An
    exception escaping the block marks the span as an error. Cheap (a non-recording span) when tracing is off."""
    started = time.perf_counter()
    with tracer().start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            if span.is_recording():  # the error's stable code, not its message
                code = str(getattr(exc, "code", "") or type(exc).__name__)
                span.set_attribute("error.type", code)
                span.set_status(Status(StatusCode.ERROR, code))
            raise
        finally:
            if span.is_recording():
                span.set_attribute("paytrust.duration_ms", round((time.perf_counter() - started) * 1000, 2))


def gateway_span_start(*, gateway: str, operation: str, method: str, url: str):
    """Start the span of one gateway call (gateways/http.py) and make it current; end it with
    `gateway_span_end`. Records the gateway, the operation, the method and the URL without its query."""
    span = tracer().start_span(
        f"gateway {gateway} {operation}",
        kind=SpanKind.CLIENT,
        attributes={
            "paytrust.gateway": gateway,
            "paytrust.gateway.operation": operation,
            "http.request.method": method,
            "url.full": url_without_query(url),
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return span, token, time.perf_counter()


def gateway_span_end(handle, *, outcome: str) -> None:
    """End a `gateway_span_start` span: its outcome ("ok" or the GatewayError code) and duration. Never raises."""
    span, token, started = handle
    try:
        otel_context.detach(token)
        if span.is_recording():
            span.set_attribute("paytrust.gateway.outcome", outcome)
            span.set_attribute("paytrust.duration_ms", round((time.perf_counter() - started) * 1000, 2))
            if outcome != "ok":
                span.set_attribute("error.type", outcome)
                span.set_status(Status(StatusCode.ERROR, outcome))
        span.end()
    except Exception:  # noqa: BLE001 - tracing must never break a payment
        logger.debug("tracing: could not end a gateway span", exc_info=True)


@contextmanager
def delivery_span(*, delivery_id: str, attempt: int, url: str) -> Iterator[trace.Span]:
    """The span of one outbound webhook delivery attempt (webhooks/outbound/delivery.py): the delivery id, the
    attempt number and the endpoint URL without its query (merchants put tokens there); never the body or the
    signature headers."""
    attributes = {
        "paytrust.delivery.id": delivery_id,
        "paytrust.delivery.attempt": attempt,
        "http.request.method": "POST",
        "url.full": url_without_query(url),
    }
    with client_span("webhook delivery", attributes) as span:
        yield span


def delivery_span_result(span, *, succeeded: bool, status_code: int | None) -> None:
    """The outcome of a delivery attempt: status code and success; an error status when it failed."""
    try:
        if not span.is_recording():
            return
        span.set_attribute("paytrust.delivery.succeeded", succeeded)
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
        if not succeeded:
            error_type = str(status_code) if status_code is not None else "connection_error"
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, error_type))
    except Exception:  # noqa: BLE001 - tracing must never break a delivery
        logger.debug("tracing: could not record a delivery result", exc_info=True)


def set_current_attribute(name: str, value: Any) -> None:
    """Set an attribute on the current span (a no-op outside a trace)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(name, value)


def current_trace_ids() -> tuple[str | None, str | None]:
    """The current trace id and span id as hex (for the logs), or (None, None) outside any trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# --- jobs ------------------------------------------------------------------------------------------------


def job_trace_context() -> dict[str, str]:
    """The current trace context as a W3C carrier ({"traceparent": ...}), to store with a deferred job; empty
    outside a trace (or with tracing off), so such jobs carry nothing."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def _start_job_span(context):
    """Take the `_trace` kwarg out of the job (the task never sees it) and start the job's span under it."""
    job = context.job
    carrier = job.task_kwargs.pop(TRACE_KWARG, None)
    parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
    return tracer().start_as_current_span(
        f"job {job.task_name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "procrastinate",
            "messaging.destination.name": job.queue or "",
            "messaging.message.id": str(job.id),
            "paytrust.job.task": job.task_name,
            "paytrust.job.attempts": job.attempts,
        },
        record_exception=False,
        set_status_on_exception=False,
    )


def _end_job_span(span, exc: BaseException | None) -> None:
    if exc is None or not span.is_recording():
        return
    if (
        getattr(exc, "traced_as_error", True) is False
    ):  # paytrust.jobs.RetryLater: run again later, no failure
        at = getattr(exc, "at", None)
        span.set_attribute("paytrust.job.retry_at", at.isoformat() if hasattr(at, "isoformat") else str(at))
        return
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def trace_job(call_next, context, worker):
    """Procrastinate task middleware (sync tasks): one span per job run, child of the deferring request's."""
    with _start_job_span(context) as span:
        try:
            result = call_next()
        except BaseException as exc:
            _end_job_span(span, exc)
            raise
        return result


async def trace_job_async(call_next, context, worker):
    """Procrastinate task middleware (async tasks): as `trace_job`."""
    with _start_job_span(context) as span:
        try:
            result = await call_next()
        except BaseException as exc:
            _end_job_span(span, exc)
            raise
        return result
