"""Fixtures for outbound webhooks: a real local HTTP receiver, an endpoint pointing at it, and a job runner.

End-to-end tests elsewhere can do:

    def test_paid_invoice_notifies_merchant(webhook_receiver, receiver_endpoint, run_outbound_jobs, ...):
        ...  # pay an invoice
        run_outbound_jobs(until=lambda: webhook_receiver.count() >= 1)
        body = webhook_receiver.verified_payloads(receiver_endpoint.secret)[0]
        assert body["type"] == "invoice.paid"

Tests that run jobs need `@pytest.mark.django_db(transaction=True)`: the worker uses its own connections.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paytrust.jobs import app
from webhooks.outbound.services import endpoint_create
from webhooks.outbound.tasks import OUTBOUND_QUEUE


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A merchant's webhook receiver. `statuses` are answered in order, then `default_status`.

    `stall_next(n)` makes the next n requests hang (no response) until `release()` — used to kill a worker
    mid-request. Every request is recorded (also the stalled ones) when it arrives.
    """

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    response_body: bytes = b'{"ok":true}'
    response_headers: dict[str, str] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stall_budget: int = 0
    _release: threading.Event = field(default_factory=threading.Event)

    def count(self) -> int:
        with self._cond:
            return len(self.requests)

    def wait_for(self, n: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stall_next(self, n: int = 1) -> None:
        with self._cond:
            self._stall_budget = n
            self._release.clear()

    def release(self) -> None:
        self._release.set()

    def verified_payloads(self, secret: str) -> list[dict]:
        """Every received body, verified with the `standardwebhooks` library (raises if one does not verify)."""
        from standardwebhooks.webhooks import Webhook

        verifier = Webhook(secret)
        return [verifier.verify(r.body, r.headers) for r in list(self.requests)]

    # called by the handler thread
    def _handle(self, request: ReceivedRequest) -> int:
        with self._cond:
            self.requests.append(request)
            stall = self._stall_budget > 0
            if stall:
                self._stall_budget -= 1
            status = self.statuses.pop(0) if self.statuses else self.default_status
            self._cond.notify_all()
        if stall:
            self._release.wait(60)
        return status


def _handler_for(receiver: WebhookReceiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver._handle(ReceivedRequest(path=self.path, headers=headers, body=body))
            payload = receiver.response_body
            try:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Type", "application/json")
                for name, value in receiver.response_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def webhook_receiver_factory():
    """Start local receivers (each its own HTTP server on a free port); all are stopped after the test."""
    servers = []

    def start(path: str = "/hooks/paytrust") -> WebhookReceiver:
        receiver = WebhookReceiver()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
        server.daemon_threads = True
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, receiver))
        return receiver

    yield start
    for server, receiver in servers:
        receiver.release()
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook_receiver(webhook_receiver_factory) -> WebhookReceiver:
    """A local HTTP server on a free port recording every webhook it gets. Stopped after the test."""
    return webhook_receiver_factory()


@dataclass
class ReceiverEndpoint:
    endpoint: object
    secret: str

    @property
    def id(self) -> str:
        return self.endpoint.id


@pytest.fixture
def receiver_endpoint(merchant, webhook_receiver) -> ReceiverEndpoint:
    """A test-mode endpoint of `merchant` for every event type, pointing at `webhook_receiver`."""
    endpoint, secret = endpoint_create(
        merchant=merchant,
        mode="test",
        url=webhook_receiver.url,
        enabled_events=["*"],
        description="test receiver",
    )
    return ReceiverEndpoint(endpoint=endpoint, secret=secret)


def _run_worker_once(concurrency: int = 1, queues: list[str] | None = None) -> None:
    with app.replace_connector(app.connector.get_worker_connector()):
        app.run_worker(
            queues=queues or [OUTBOUND_QUEUE],
            wait=False,
            concurrency=concurrency,
            install_signal_handlers=False,
            listen_notify=False,
        )


@pytest.fixture
def run_outbound_jobs(transactional_db):
    """Run an in-process procrastinate worker on the outbound queue until the queue is drained (and `until()`
    holds, re-running for scheduled retries). Needs a transaction=True test (the worker has its own connections).
    """

    from django.db import connection

    with connection.cursor() as cursor:  # jobs of earlier tests (procrastinate tables are not flushed)
        cursor.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers CASCADE"
        )

    def run(until=None, timeout: float = 60.0, concurrency: int = 1, queues: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            _run_worker_once(concurrency=concurrency, queues=queues)
            if until is None or until():
                return
            if time.monotonic() > deadline:
                raise AssertionError("outbound jobs did not reach the expected state in time")
            time.sleep(0.2)

    return run
