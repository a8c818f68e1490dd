"""Tracing fixtures: the real `paytrust.tracing.configure()` with an in-memory span exporter.

Tracing instruments psycopg when a connection is made (as in production, where `configure()` runs before the
first query). Django's pool keeps its connections between tests, so the tests that want SQL spans are
transaction=True tests and `spans` closes the pool first: the connections of the test are then new, traced ones.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from paytrust import tracing
from paytrust.logs import JsonFormatter, RequestContextFilter
from tests.gateways.conftest import _fresh_breakers, xendit_account  # noqa: F401 - fixtures re-exported
from tests.payments.conftest import xendit_fake  # noqa: F401
from tests.webhooks.conftest import webhook_receiver, webhook_receiver_factory  # noqa: F401


class Spans:
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list:
        return [span for span in self.all() if span.name.startswith(prefix)]

    def one(self, prefix: str):
        found = self.named(prefix)
        assert len(found) == 1, [span.name for span in self.all()]
        return found[0]

    def in_trace(self, trace_id: int) -> list:
        return [span for span in self.all() if span.context.trace_id == trace_id]

    def clear(self) -> None:
        self.exporter.clear()


def _close_pool() -> None:
    from django.db import connections

    connections.close_all()
    connection = connections["default"]
    if getattr(connection, "pool", None) is not None:
        connection.close_pool()


@pytest.fixture(autouse=True)
def _tracing_reset():
    """Each test starts with tracing off, whatever ran before it in this worker: importing paytrust.wsgi (as
    tests/test_schema_conformance.py does) configures tracing for the process, and `configure()` is idempotent, so
    a test's in-memory exporter would otherwise be ignored (flaky under xdist, by the order files reach a worker)."""
    tracing.shutdown()
    yield


@pytest.fixture
def spans():
    """Tracing on for this test, every finished span kept in memory; off (uninstrumented) afterwards."""
    exporter = InMemorySpanExporter()
    _close_pool()
    assert tracing.configure(span_processor=SimpleSpanProcessor(exporter)) is not None
    try:
        yield Spans(exporter)
    finally:
        tracing.shutdown()
        _close_pool()  # later tests get untraced connections again


@pytest.fixture
def json_log_lines():
    """The JSON lines PayTrust's log handler (settings.LOGGING's filter and formatter) writes during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def hex_trace_id(span) -> str:
    return format(span.context.trace_id, "032x")


def all_attribute_text(spans: list) -> str:
    """Every attribute name and value, every event and the names of all spans, as one string (to look for
    secrets in)."""
    parts = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{key}={value}" for key, value in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{key}={value}" for key, value in (event.attributes or {}).items())
        parts.append(str(span.resource.attributes))
    return "\n".join(parts)
