"""A delivery to a port nobody listens on is recorded as what it is (issue 11 point 13): "connection refused"
with the real (short) latency, not "timeout after 15 s"."""

from __future__ import annotations

import socket

import pytest
from django.db import transaction

from paytrust.jobs import RetryLater
from webhooks.outbound.delivery import delivery_attempt, http_send
from webhooks.outbound.models import Delivery, DeliveryStatus
from webhooks.outbound.services import endpoint_create, event_record


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nobody listens there


def test_http_send_to_a_closed_port_says_connection_refused_with_its_real_latency(settings):
    settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = 15
    result = http_send(url=f"http://127.0.0.1:{_closed_port()}/hook", mode="test", headers={}, body=b"{}")
    assert not result.succeeded and result.status_code is None
    assert result.error == "connection refused"
    assert 0 <= result.latency_ms < 15_000  # measured, and nowhere near the timeout


@pytest.mark.django_db(transaction=True)
def test_the_recorded_attempt_says_connection_refused_and_is_retried(merchant):
    endpoint_create(
        merchant=merchant, mode="test", url=f"http://127.0.0.1:{_closed_port()}/hook", enabled_events=["*"]
    )
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.paid", data={"id": "inv_1"})
    delivery = Delivery.objects.get(event=event)

    with pytest.raises(RetryLater):
        delivery_attempt(delivery_id=delivery.id)

    attempt = delivery.attempts.get()
    assert attempt.error == "connection refused" and attempt.status_code is None
    assert "timeout" not in attempt.error
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
