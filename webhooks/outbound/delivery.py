"""Outbound delivery engine: claim -> send -> record, in two short transactions around the HTTP call.

Each delivery is sent by one procrastinate job (`deliver_webhook`, webhooks/outbound/tasks.py) whose lock is the
delivery id, so two runs for one delivery never overlap. The `Delivery` row records the state (status,
`next_attempt_at`, counters) and every attempt. A run that finds its delivery succeeded, failed or cancelled does
nothing, so a job run twice never sends a delivery that has already succeeded. A failed attempt with retries left
puts the delivery back to `pending` with `next_attempt_at` (the schedule, ±20 % jitter, or the receiver's
Retry-After) and raises `RetryLater(next_attempt_at)`: procrastinate retries the job then. A worker killed
mid-request leaves the delivery `sending` and its job `doing`; procrastinate's stalled-job retry
(paytrust.jobs.retry_stalled_jobs) hands the job back, and its next run records the interrupted attempt and sends
again (at-least-once). No lease. See docs/adr/0012-outbound-webhook-delivery.md.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from paytrust import metrics, tracing
from paytrust.jobs import RetryLater
from webhooks.outbound import signing
from webhooks.outbound.destinations import Destination, DestinationRefused, destination_resolve
from webhooks.outbound.models import Delivery, DeliveryAttempt, DeliveryStatus, Event, WebhookEndpoint

logger = logging.getLogger("paytrust.webhooks.outbound.delivery")

USER_AGENT = "PayTrust-Webhooks/1.0"
ERROR_MAX = 500
# A claim that finds its endpoint at the in-flight cap tries again after this many seconds (jittered).
BUSY_RETRY_SECONDS = (1.0, 3.0)
# The procrastinate task that sends one delivery (webhooks/outbound/tasks.py); its lock is the delivery id.
DELIVER_TASK = "webhooks.deliver_webhook"
INTERRUPTED = "attempt interrupted (worker lost before recording the outcome); re-sending"


# --- payload ----------------------------------------------------------------------------------------------


def event_payload(event: Event) -> dict:
    return {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


def _dumps(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder).encode()


def event_body(event: Event) -> bytes:
    """The exact bytes sent (and signed). Deterministic for a stored event, so every retry sends the same body.

    Above settings.OUTBOUND_WEBHOOK_MAX_PAYLOAD_BYTES a thin payload is sent instead: the object's `id` and
    `object` plus `"truncated": true`; the receiver fetches the full object (or the event) from the API.
    """
    payload = event_payload(event)
    body = _dumps(payload)
    if len(body) <= settings.OUTBOUND_WEBHOOK_MAX_PAYLOAD_BYTES:
        return body
    data = event.data if isinstance(event.data, dict) else {}
    thin = {key: data[key] for key in ("id", "object") if key in data}
    thin["truncated"] = True
    return _dumps({**payload, "data": thin})


def endpoint_signing_secrets(endpoint: WebhookEndpoint, *, now=None) -> list[str]:
    """The current secret, plus the previous one while its rotation window is open."""
    now = now or timezone.now()
    result = [signing.secret_decrypt(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        result.append(signing.secret_decrypt(endpoint.previous_secret_encrypted))
    return result


# --- HTTP -------------------------------------------------------------------------------------------------


@dataclass
class AttemptResult:
    succeeded: bool
    status_code: int | None = None
    latency_ms: int | None = None
    error: str = ""
    response_excerpt: str = ""
    retry_after_seconds: float | None = None  # the receiver's Retry-After (429/503), if it sent a valid one


# Each scheduled delay is spread over ±20 %, so retries after an endpoint's outage do not all arrive together.
RETRY_JITTER = 0.2


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now (RFC 9110: delay-seconds or an HTTP-date); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or timezone.now())).total_seconds())


def retry_delay_seconds(scheduled: float, retry_after: float | None) -> float:
    """The wait before the next attempt: the schedule's delay with jitter, or longer if the receiver asked (its
    Retry-After, capped at the schedule's longest delay so one answer cannot park a delivery for days)."""
    delay = scheduled * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)  # noqa: S311 - jitter, not a secret
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(settings.OUTBOUND_WEBHOOK_RETRY_DELAYS)))
    return delay


def _pool_for(destination: Destination, timeout):
    import urllib3

    if destination.scheme == "https":
        try:
            import certifi

            ca_certs = certifi.where()
        except ImportError:  # pragma: no cover - certifi ships with requests
            ca_certs = None
        return urllib3.HTTPSConnectionPool(
            destination.address,
            destination.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=destination.host,
            assert_hostname=destination.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )
    return urllib3.HTTPConnectionPool(
        destination.address, destination.port, timeout=timeout, retries=False, maxsize=1
    )


def _host_header(destination: Destination) -> str:
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    default = 443 if destination.scheme == "https" else 80
    return host if destination.port == default else f"{host}:{destination.port}"


def _connect_failure(exc: BaseException) -> str:
    """What went wrong connecting, from the socket error urllib3 wraps: refused, unreachable, timed out, …"""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError | socket.timeout):
        return f"connect timeout after {settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS:g} s"
    if isinstance(cause, OSError) and cause.strerror:
        return f"could not connect: {cause.strerror.lower()}"[:ERROR_MAX]
    return f"could not connect: {type(cause or exc).__name__}"[:ERROR_MAX]


def http_send(*, url: str, mode: str, headers: dict[str, str], body: bytes) -> AttemptResult:
    """POST `body` once. Re-checks the destination (SSRF) and connects to the checked IP; never follows redirects."""
    import urllib3

    try:
        destination = destination_resolve(url, mode=mode)
    except DestinationRefused as exc:
        return AttemptResult(succeeded=False, error=f"destination refused: {exc}")
    timeout = urllib3.Timeout(total=settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS)
    request_headers = {
        "Host": _host_header(destination),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    started = time.monotonic()
    pool = _pool_for(destination, timeout)
    try:
        response = pool.urlopen(
            "POST",
            destination.path,
            body=body,
            headers=request_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            raw = response.read(settings.OUTBOUND_WEBHOOK_RESPONSE_EXCERPT_BYTES, decode_content=False) or b""
        except (urllib3.exceptions.HTTPError, OSError):
            raw = b""
        latency_ms = int((time.monotonic() - started) * 1000)
        status = response.status
        retry_after_header = response.headers.get("Retry-After")
        response.close()
    except urllib3.exceptions.NewConnectionError as exc:
        # Before TimeoutError: urllib3 makes a failed connect a ConnectTimeoutError even when it was refused at once.
        return AttemptResult(
            succeeded=False,
            latency_ms=int((time.monotonic() - started) * 1000),
            error=_connect_failure(exc),
        )
    except urllib3.exceptions.TimeoutError:
        return AttemptResult(
            succeeded=False,
            latency_ms=int((time.monotonic() - started) * 1000),
            error=f"timeout after {settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS:g} s",
        )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return AttemptResult(
            succeeded=False,
            latency_ms=int((time.monotonic() - started) * 1000),
            error=f"connection error: {type(exc).__name__}: {exc}"[:ERROR_MAX],
        )
    finally:
        pool.close()
    excerpt = raw.decode("utf-8", errors="replace")
    retry_after = parse_retry_after(retry_after_header) if status in (429, 503) else None
    if 200 <= status < 300:
        return AttemptResult(
            succeeded=True, status_code=status, latency_ms=latency_ms, response_excerpt=excerpt
        )
    if 300 <= status < 400:
        error = f"redirect ({status}) not followed"
    else:
        error = f"HTTP {status}"
    return AttemptResult(
        succeeded=False,
        status_code=status,
        latency_ms=latency_ms,
        error=error,
        response_excerpt=excerpt,
        retry_after_seconds=retry_after,
    )


# --- claim / record ---------------------------------------------------------------------------------------


@dataclass
class Claim:
    delivery_id: str
    number: int  # the delivery's attempt_count when claimed: the record checks no later run took over
    url: str
    mode: str
    headers: dict[str, str]
    body: bytes


def _finish(delivery: Delivery, status: str, error: str) -> None:
    """Under the delivery's lock: no more attempts (cancelled or failed)."""
    delivery.status = status
    delivery.next_attempt_at = None
    delivery.last_error = error[:ERROR_MAX]
    delivery.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])


def _close_interrupted(delivery: Delivery, now) -> None:
    """The previous run of this delivery's job died mid-request (its worker was killed; procrastinate's stalled-job
    retry handed the job back): its request may or may not have arrived. Keep it as a failed attempt."""
    DeliveryAttempt.objects.create(
        delivery=delivery, attempted_at=delivery.last_attempt_at or now, succeeded=False, error=INTERRUPTED
    )
    delivery.last_error = "attempt interrupted"


def _take(delivery: Delivery, endpoint: WebhookEndpoint, now) -> Claim:
    """Mark the delivery `sending` (one more attempt) and prepare the signed request."""
    delivery.status = DeliveryStatus.SENDING
    delivery.attempt_count += 1
    delivery.cycle_attempts += 1
    delivery.last_attempt_at = now
    delivery.save(
        update_fields=[
            "status",
            "attempt_count",
            "cycle_attempts",
            "last_attempt_at",
            "last_error",
            "updated_at",
        ]
    )
    body = event_body(delivery.event)
    headers = signing.headers_for(
        secrets_=endpoint_signing_secrets(endpoint, now=now),
        msg_id=delivery.event_id,
        timestamp=int(time.time()),
        body=body,
    )
    return Claim(
        delivery_id=delivery.id,
        number=delivery.attempt_count,
        url=endpoint.url,
        mode=endpoint.mode,
        headers=headers,
        body=body,
    )


def _claim(delivery_id: str) -> Claim | RetryLater | None:
    """Claim the delivery if it is due and its endpoint has a free in-flight slot. None: nothing to do (succeeded,
    failed, cancelled); RetryLater: come back then (not due yet, endpoint busy)."""
    endpoint_id = Delivery.objects.filter(pk=delivery_id).values_list("endpoint_id", flat=True).first()
    if endpoint_id is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        # Serialises claims for one endpoint so the in-flight count below cannot be overrun by a race.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"whe:{endpoint_id}"])
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint", "event")
            .get(pk=delivery_id)
        )
        if delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
            return None
        if (
            delivery.status == DeliveryStatus.PENDING
            and delivery.next_attempt_at
            and delivery.next_attempt_at > now
        ):
            return RetryLater(delivery.next_attempt_at, "not due yet")
        if delivery.status == DeliveryStatus.SENDING:  # no other job of it can run: the previous one died
            _close_interrupted(delivery, now)
            if delivery.cycle_attempts > len(settings.OUTBOUND_WEBHOOK_RETRY_DELAYS):
                _finish(delivery, DeliveryStatus.FAILED, "attempt interrupted (the last)")
                return None
        endpoint = delivery.endpoint
        if not endpoint.enabled or endpoint.deleted_at is not None:
            reason = "endpoint disabled" if endpoint.deleted_at is None else "endpoint deleted"
            _finish(delivery, DeliveryStatus.CANCELLED, reason)
            return None
        in_flight = (
            Delivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.SENDING)
            .exclude(pk=delivery.pk)
            .count()
        )
        if in_flight >= settings.OUTBOUND_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = now + timedelta(seconds=random.uniform(*BUSY_RETRY_SECONDS))  # noqa: S311
            delivery.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
            return RetryLater(delivery.next_attempt_at, "endpoint busy")
        return _take(delivery, endpoint, now)


def _after_failure(delivery: Delivery, result: AttemptResult, now) -> RetryLater | None:
    """Under the delivery's lock, after a failed attempt of the current claim: the next retry, or the end."""
    delays = settings.OUTBOUND_WEBHOOK_RETRY_DELAYS
    if result.status_code == 410:
        endpoint_disable_gone(endpoint_id=delivery.endpoint_id)
    elif delivery.cycle_attempts <= len(delays):
        delivery.status = DeliveryStatus.PENDING
        delay = retry_delay_seconds(delays[delivery.cycle_attempts - 1], result.retry_after_seconds)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        return RetryLater(delivery.next_attempt_at, result.error)
    delivery.status = DeliveryStatus.FAILED
    delivery.next_attempt_at = None
    return None


def _record(claim: Claim, result: AttemptResult) -> tuple[Delivery, RetryLater | None]:
    """Store the attempt and its consequence; the retry to schedule, if any."""
    now = timezone.now()
    retry = None
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=claim.delivery_id)
        DeliveryAttempt.objects.create(
            delivery=delivery,
            attempted_at=delivery.last_attempt_at or now,
            succeeded=result.succeeded,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error[:ERROR_MAX],
            response_excerpt=result.response_excerpt,
        )
        fields = ["status", "next_attempt_at", "last_status_code", "last_error", "updated_at"]
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error[:ERROR_MAX]
        current = delivery.status == DeliveryStatus.SENDING and delivery.attempt_count == claim.number
        if result.succeeded:
            # A success counts even if a later run took over meanwhile (the other request is then a duplicate).
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.succeeded_at = delivery.succeeded_at or now
            delivery.next_attempt_at = None
            fields.append("succeeded_at")
        elif current:
            retry = _after_failure(delivery, result, now)
        else:  # a later run took over (this one was presumed dead): keep the attempt, leave it the state
            fields = ["updated_at"]
        delivery.save(update_fields=fields)
    return delivery, retry


def endpoint_disable_gone(*, endpoint_id: str) -> None:
    """The endpoint answered 410 Gone: switch it off (Standard Webhooks). Re-enable with PATCH enabled=true."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        if endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = "gone"
            endpoint.save(update_fields=["enabled", "disabled_reason", "updated_at"])
            logger.warning("webhook endpoint disabled after 410", extra={"endpoint": endpoint_id})


def delivery_attempt(*, delivery_id: str) -> Delivery | None:
    """One attempt of a delivery if it is due: claim (commit), POST (no transaction open), record (commit).

    Returns the delivery after the attempt, or None when there was nothing to do (already succeeded, failed or
    cancelled). Raises `RetryLater(at)` when the delivery is to be tried again later — after a failed attempt
    with retries left, when it is not due yet, or when its endpoint is at the in-flight cap — so the job runner
    retries the job then."""
    claim = _claim(delivery_id)
    if isinstance(claim, RetryLater):
        raise claim
    if claim is None:
        return None
    if connection.in_atomic_block:  # pragma: no cover - guarded by design
        raise RuntimeError("outbound HTTP must not run inside a transaction")
    with tracing.delivery_span(delivery_id=claim.delivery_id, attempt=claim.number, url=claim.url) as span:
        try:
            result = http_send(url=claim.url, mode=claim.mode, headers=claim.headers, body=claim.body)
        except Exception as exc:  # noqa: BLE001 - record it as a failed attempt rather than leave it `sending`
            logger.exception("webhook delivery attempt crashed", extra={"delivery": claim.delivery_id})
            result = AttemptResult(succeeded=False, error=f"internal error: {type(exc).__name__}")
        tracing.delivery_span_result(span, succeeded=result.succeeded, status_code=result.status_code)
    delivery, retry = _record(claim, result)
    if result.succeeded:
        outcome = "succeeded"
    elif retry is not None:
        outcome = "retry_scheduled"
    else:
        outcome = "failed" if result.status_code != 410 else "gone"
    metrics.delivery_observed(outcome)
    logger.info(
        "webhook delivery attempt",
        extra={
            "delivery": delivery.id,
            "event": delivery.event_id,
            "endpoint": delivery.endpoint_id,
            "status_code": result.status_code,
            "succeeded": result.succeeded,
            "latency_ms": result.latency_ms,
            "delivery_status": delivery.status,
        },
    )
    if retry is not None:
        raise retry
    return delivery
