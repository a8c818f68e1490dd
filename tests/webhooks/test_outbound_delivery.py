import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paytrust.jobs import RetryLater
from tests.shared import SHARED_DIR
from webhooks.outbound import signing
from webhooks.outbound.delivery import delivery_attempt, parse_retry_after, retry_delay_seconds
from webhooks.outbound.models import Delivery, DeliveryStatus
from webhooks.outbound.services import event_record

INVOICE = {"id": "inv_123", "object": "invoice", "status": "paid", "amount_due": "150000", "currency": "IDR"}


def _record(merchant, type_="invoice.paid", data=None):
    with transaction.atomic():
        return event_record(merchant=merchant, mode="test", type=type_, data=data or INVOICE)


def _status(event):
    return list(Delivery.objects.filter(event=event).values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
def test_delivered_event_verifies_with_the_standardwebhooks_library(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs
):
    event = _record(merchant)
    run_outbound_jobs(until=lambda: _status(event) == ["succeeded"])

    assert webhook_receiver.count() == 1
    received = webhook_receiver.requests[0]
    payload = Webhook(receiver_endpoint.secret).verify(received.body, received.headers)
    assert payload == {
        "id": event.id,
        "type": "invoice.paid",
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": INVOICE,
    }
    assert received.headers["webhook-id"] == event.id
    assert received.headers["content-type"] == "application/json"
    assert received.path == "/hooks/paytrust"

    tampered = received.body.replace(b"150000", b"150001")
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver_endpoint.secret).verify(tampered, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_generate()).verify(received.body, received.headers)


def test_signature_with_an_old_timestamp_is_refused_by_the_library():
    secret = signing.secret_generate()
    body = b'{"id":"evt_1","type":"invoice.paid"}'
    old = int(time.time()) - 3600
    headers = signing.headers_for(secrets_=[secret], msg_id="evt_1", timestamp=old, body=body)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, headers)
    fresh = signing.headers_for(secrets_=[secret], msg_id="evt_1", timestamp=int(time.time()), body=body)
    assert Webhook(secret).verify(body, fresh)["id"] == "evt_1"


def test_signature_matches_the_standard_webhooks_test_vector():
    with open(SHARED_DIR / "gateway_samples" / "standard_webhooks_test_vector.json") as fh:
        vector = json.load(fh)
    signature = signing.sign(
        secret=vector["secret"],
        msg_id=vector["webhook-id"],
        timestamp=int(vector["webhook-timestamp"]),
        body=vector["body"].encode(),
    )
    assert signature == vector["webhook-signature"]
    # and the library agrees
    ts = datetime.fromtimestamp(int(vector["webhook-timestamp"]), tz=UTC)
    assert Webhook(vector["secret"]).sign(vector["webhook-id"], ts, vector["body"]) == signature


def _attempts(event):
    delivery = Delivery.objects.get(event=event)
    return list(delivery.attempts.order_by("attempted_at", "id").values_list("succeeded", "status_code"))


@pytest.mark.django_db(transaction=True)
def test_receiver_failing_twice_gets_the_event_on_the_third_attempt(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs, settings
):
    settings.OUTBOUND_WEBHOOK_RETRY_DELAYS = [1, 1, 1]
    webhook_receiver.statuses = [500, 500]
    event = _record(merchant)

    run_outbound_jobs(until=lambda: _status(event) == ["succeeded"])

    assert webhook_receiver.count() == 3
    assert _attempts(event) == [(False, 500), (False, 500), (True, 200)]
    delivery = Delivery.objects.get(event=event)
    assert delivery.attempt_count == 3 and delivery.succeeded_at is not None
    # the same event id and the same body on every retry
    assert {r.headers["webhook-id"] for r in webhook_receiver.requests} == {event.id}
    assert len({r.body for r in webhook_receiver.requests}) == 1
    assert len(webhook_receiver.verified_payloads(receiver_endpoint.secret)) == 3


@pytest.mark.django_db(transaction=True)
def test_receiver_never_answering_2xx_ends_failed_after_the_whole_schedule(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs, settings
):
    settings.OUTBOUND_WEBHOOK_RETRY_DELAYS = [0, 1]
    webhook_receiver.default_status = 503
    event = _record(merchant)

    run_outbound_jobs(until=lambda: _status(event) == ["failed"])

    assert _attempts(event) == [(False, 503)] * 3
    delivery = Delivery.objects.get(event=event)
    assert delivery.next_attempt_at is None and delivery.last_error == "HTTP 503"


@pytest.mark.django_db(transaction=True)
def test_redirect_is_a_failed_attempt_and_is_not_followed(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs, settings
):
    settings.OUTBOUND_WEBHOOK_RETRY_DELAYS = []
    webhook_receiver.statuses = [302]
    event = _record(merchant)

    run_outbound_jobs(until=lambda: _status(event) == ["failed"])

    assert webhook_receiver.count() == 1  # the Location was not requested
    assert _attempts(event) == [(False, 302)]
    assert "redirect" in Delivery.objects.get(event=event).last_error


@pytest.mark.django_db(transaction=True)
def test_410_gone_disables_the_endpoint(merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs):
    webhook_receiver.statuses = [410]
    event = _record(merchant)

    run_outbound_jobs(until=lambda: _status(event) == ["failed"])

    receiver_endpoint.endpoint.refresh_from_db()
    assert receiver_endpoint.endpoint.enabled is False
    assert receiver_endpoint.endpoint.disabled_reason == "gone"
    later = _record(merchant, "invoice.voided")
    assert not Delivery.objects.filter(event=later).exists()
    assert webhook_receiver.count() == 1


@pytest.mark.django_db(transaction=True)
def test_response_excerpt_latency_and_status_are_recorded_capped(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs, settings
):
    settings.OUTBOUND_WEBHOOK_RESPONSE_EXCERPT_BYTES = 16
    webhook_receiver.response_body = b"x" * 5000
    event = _record(merchant)

    run_outbound_jobs(until=lambda: _status(event) == ["succeeded"])

    attempt = Delivery.objects.get(event=event).attempts.get()
    assert attempt.status_code == 200 and attempt.latency_ms is not None
    assert attempt.response_excerpt == "x" * 16


@pytest.mark.django_db(transaction=True)
def test_job_run_again_after_success_sends_nothing(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs
):
    from webhooks.outbound.delivery import delivery_attempt

    event = _record(merchant)
    run_outbound_jobs(until=lambda: _status(event) == ["succeeded"])
    delivery = Delivery.objects.get(event=event)

    assert delivery_attempt(delivery_id=delivery.id) is None
    assert delivery_attempt(delivery_id=delivery.id) is None
    assert webhook_receiver.count() == 1
    assert delivery.attempts.count() == 1


@pytest.mark.django_db(transaction=True)
def test_duplicate_jobs_running_at_once_send_one_request(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs
):
    """Four jobs of one delivery on a worker running four at once: the job lock (the delivery id) lets one run at
    a time, the first sends while the others wait, and they then find it succeeded."""
    from paytrust.jobs import defer_in_transaction
    from webhooks.outbound.delivery import DELIVER_TASK

    event = _record(merchant)
    delivery = Delivery.objects.get(event=event)
    with transaction.atomic():
        defer_in_transaction(DELIVER_TASK, *[{"delivery_id": delivery.id}] * 3, locks=[delivery.id] * 3)
    webhook_receiver.stall_next(
        1
    )  # the first request hangs: the duplicates would send meanwhile if they could
    threading.Timer(1.0, webhook_receiver.release).start()

    run_outbound_jobs(concurrency=4, until=lambda: _status(event) == ["succeeded"])

    assert webhook_receiver.count() == 1
    assert delivery.attempts.count() == 1


@pytest.mark.django_db(transaction=True)
def test_rotated_secret_signs_with_both_secrets_during_the_window(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs
):
    from webhooks.outbound.services import endpoint_rotate_secret

    old_secret = receiver_endpoint.secret
    _, new_secret = endpoint_rotate_secret(endpoint=receiver_endpoint.endpoint)
    event = _record(merchant)
    run_outbound_jobs(until=lambda: _status(event) == ["succeeded"])

    received = webhook_receiver.requests[0]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old_secret).verify(received.body, received.headers)["id"] == event.id
    assert Webhook(new_secret).verify(received.body, received.headers)["id"] == event.id


@pytest.mark.django_db(transaction=True)
def test_rotation_without_grace_stops_the_old_secret_at_once(
    merchant, webhook_receiver, receiver_endpoint, run_outbound_jobs
):
    from webhooks.outbound.services import endpoint_rotate_secret

    _, new_secret = endpoint_rotate_secret(endpoint=receiver_endpoint.endpoint, grace_seconds=0)
    event = _record(merchant)
    run_outbound_jobs(until=lambda: _status(event) == ["succeeded"])

    received = webhook_receiver.requests[0]
    assert Webhook(new_secret).verify(received.body, received.headers)["id"] == event.id
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver_endpoint.secret).verify(received.body, received.headers)


@pytest.mark.django_db(transaction=True)
def test_events_are_only_sent_to_endpoints_subscribed_to_their_type(
    merchant, run_outbound_jobs, webhook_receiver
):
    from webhooks.outbound.services import endpoint_create

    paid = webhook_receiver
    paid_endpoint, paid_secret = endpoint_create(
        merchant=merchant, mode="test", url=paid.url, enabled_events=["invoice.paid"]
    )
    _record(merchant, "invoice.created")
    paid_event = _record(merchant, "invoice.paid")
    run_outbound_jobs(until=lambda: _status(paid_event) == ["succeeded"])

    assert [p["type"] for p in paid.verified_payloads(paid_secret)] == ["invoice.paid"]


def test_oversized_payload_is_sent_thin(merchant, settings):
    from webhooks.outbound.delivery import event_body

    settings.OUTBOUND_WEBHOOK_MAX_PAYLOAD_BYTES = 1024
    big = {**INVOICE, "description": "x" * 5000}
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.paid", data=big)
    body = json.loads(event_body(event))
    assert body["data"] == {"id": "inv_123", "object": "invoice", "truncated": True}
    assert body["id"] == event.id and body["type"] == "invoice.paid"
    small = json.loads(event_body(_record(merchant)))
    assert small["data"] == INVOICE


def test_deleted_endpoint_gets_nothing_more(merchant, receiver_endpoint):
    from webhooks.outbound.delivery import delivery_attempt
    from webhooks.outbound.services import endpoint_delete

    event = _record(merchant)
    endpoint_delete(endpoint=receiver_endpoint.endpoint)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.CANCELLED
    assert delivery_attempt(delivery_id=delivery.id) is None
    assert not Delivery.objects.filter(event=_record(merchant)).exists()


@pytest.mark.django_db(transaction=True)
def test_host_that_now_resolves_to_a_private_address_is_not_contacted(
    merchant, webhook_receiver, monkeypatch
):
    """DNS rebinding: the URL was public at registration; at delivery time it resolves to loopback."""
    import socket

    from webhooks.outbound import destinations
    from webhooks.outbound.services import endpoint_create

    answers = {"hooks.merchant.example": "93.184.215.14"}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(destinations.socket, "getaddrinfo", fake_getaddrinfo)
    port = webhook_receiver.url.split(":")[2].split("/")[0]
    endpoint_create(
        merchant=merchant,
        mode="live",
        url=f"https://hooks.merchant.example:{port}/hook",
        enabled_events=["*"],
    )
    answers["hooks.merchant.example"] = "127.0.0.1"  # the DNS answer changes
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="live", type="invoice.paid", data=INVOICE)
    from webhooks.outbound.delivery import delivery_attempt

    delivery = Delivery.objects.get(event=event)
    with pytest.raises(RetryLater):  # retried later, re-checked again then
        delivery_attempt(delivery_id=delivery.id)

    assert webhook_receiver.count() == 0
    attempt = delivery.attempts.get()
    assert attempt.status_code is None and attempt.error.startswith("destination refused")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("status", "retry_after", "expected_seconds"),
    [
        (503, "120", 120),  # the receiver asks for longer than the schedule's 5 s: it gets it
        (429, "Sun, 06 Nov 2094 08:49:37 GMT", 600),  # an HTTP-date, capped at the schedule's longest delay
        (503, "soon", 5),  # not a valid Retry-After: the schedule
        (500, "120", 5),  # only 429 and 503 carry a meaningful Retry-After
    ],
)
def test_retry_after_of_the_receiver_is_honoured(
    merchant, webhook_receiver, receiver_endpoint, settings, status, retry_after, expected_seconds
):
    settings.OUTBOUND_WEBHOOK_RETRY_DELAYS = [5, 60, 600]
    webhook_receiver.default_status = status
    webhook_receiver.response_headers = {"Retry-After": retry_after}
    event = _record(merchant)
    delivery = Delivery.objects.get(event=event)

    before = timezone.now()
    with pytest.raises(RetryLater) as retry:  # the job is retried by procrastinate at that time
        delivery_attempt(delivery_id=delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == status
    assert retry.value.at == delivery.next_attempt_at
    waited = (delivery.next_attempt_at - before).total_seconds()
    if expected_seconds == 5:  # the schedule, with its jitter
        assert 5 * 0.8 - 1 <= waited <= 5 * 1.2 + 1
    else:
        assert expected_seconds - 1 <= waited <= expected_seconds + 1


def test_parse_retry_after():
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now=now) == 30
    assert parse_retry_after(" 0 ", now=now) == 0
    assert parse_retry_after("Sun, 22 Nov 2026 12:01:30 GMT", now=now) == 90
    assert parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now=now) == 0  # in the past: now
    for bad in (None, "", "-5", "1.5", "²", "tomorrow", "Sun, 22 Nov 2026 12:01:30"):
        assert parse_retry_after(bad, now=now) is None, bad


def test_scheduled_delays_are_spread_by_the_jitter(settings):
    settings.OUTBOUND_WEBHOOK_RETRY_DELAYS = [300, 3600]
    delays = [retry_delay_seconds(300, None) for _ in range(2000)]
    assert 240 <= min(delays) < 255 and 345 < max(delays) <= 360  # ±20 %, the whole range used
    assert len({round(d) for d in delays}) > 50
    assert retry_delay_seconds(300, 1000) == 1000  # the receiver asked for longer
    assert 240 <= retry_delay_seconds(300, 10) <= 360  # ... or shorter: the schedule stands
    assert retry_delay_seconds(300, 10**9) == 3600  # capped at the longest delay
    assert retry_delay_seconds(0, None) == 0
    assert timedelta(seconds=retry_delay_seconds(5, None)) <= timedelta(seconds=6)
