"""Outbound delivery engine: claim -> send -> record, in two short transactions around the HTTP call.

The `Delivery` row is the source of truth (status, `next_attempt_at`, lease); procrastinate jobs only trigger
work. A job that finds its delivery not due, already succeeded, or leased to someone else does nothing, so a job
run twice never sends twice a delivery that has already succeeded. A worker killed mid-request leaves the delivery
`sending` with an expiring lease; the periodic sweeper puts it back to `pending` and defers a new job
(at-least-once). See docs/adr/0012-outbound-webhook-delivery.md.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from paytrust import metrics
from webhooks.outbound import signing
from webhooks.outbound.destinations import Destination, DestinationRefused, destination_resolve
from webhooks.outbound.models import Delivery, DeliveryAttempt, DeliveryStatus, Event, WebhookEndpoint

logger = logging.getLogger("paytrust.webhooks.outbound.delivery")

USER_AGENT = "PayTrust-Webhooks/1.0"
ERROR_MAX = 500
# A claim that finds its endpoint at the in-flight cap tries again after this many seconds (jittered).
BUSY_RETRY_SECONDS = (1.0, 3.0)
SWEEP_BATCH = 500


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


def _lease_seconds() -> float:
    return settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS + settings.OUTBOUND_WEBHOOK_LEASE_MARGIN_SECONDS


def _defer(delivery: Delivery, *, schedule_at=None) -> None:
    """Defer a job for `delivery` in the current transaction and remember its id (caller saves)."""
    from webhooks.outbound.tasks import defer_in_transaction, deliver_webhook

    (delivery.job_id,) = defer_in_transaction(
        deliver_webhook, {"delivery_id": delivery.id}, schedule_at=schedule_at
    )


@dataclass
class Claim:
    delivery_id: str
    token: str
    url: str
    mode: str
    headers: dict[str, str]
    body: bytes


def _claim(delivery_id: str) -> Claim | None:
    """Lease the delivery if it is due and its endpoint has a free in-flight slot; else do nothing."""
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
        if delivery.status == DeliveryStatus.SENDING and delivery.lease_expires_at > now:
            return None  # another worker holds it
        if (
            delivery.status == DeliveryStatus.PENDING
            and delivery.next_attempt_at
            and delivery.next_attempt_at > now
        ):
            return None  # not due; the job deferred for that time (or the sweeper) will come back
        endpoint = delivery.endpoint
        if not endpoint.enabled or endpoint.deleted_at is not None:
            delivery.status = DeliveryStatus.CANCELLED
            delivery.next_attempt_at = None
            delivery.lease_token, delivery.lease_expires_at = "", None
            delivery.last_error = "endpoint disabled" if endpoint.deleted_at is None else "endpoint deleted"
            delivery.save(
                update_fields=[
                    "status",
                    "next_attempt_at",
                    "lease_token",
                    "lease_expires_at",
                    "last_error",
                    "updated_at",
                ]
            )
            return None
        in_flight = (
            Delivery.objects.filter(
                endpoint_id=endpoint_id, status=DeliveryStatus.SENDING, lease_expires_at__gt=now
            )
            .exclude(pk=delivery.pk)
            .count()
        )
        if in_flight >= settings.OUTBOUND_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT:
            retry_at = now + timedelta(seconds=random.uniform(*BUSY_RETRY_SECONDS))  # noqa: S311 - jitter
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = retry_at
            delivery.lease_token, delivery.lease_expires_at = "", None
            _defer(delivery, schedule_at=retry_at)
            delivery.save(
                update_fields=[
                    "status",
                    "next_attempt_at",
                    "lease_token",
                    "lease_expires_at",
                    "job_id",
                    "updated_at",
                ]
            )
            return None
        token = uuid.uuid4().hex
        delivery.status = DeliveryStatus.SENDING
        delivery.lease_token = token
        delivery.lease_expires_at = now + timedelta(seconds=_lease_seconds())
        delivery.attempt_count += 1
        delivery.cycle_attempts += 1
        delivery.last_attempt_at = now
        delivery.save(
            update_fields=[
                "status",
                "lease_token",
                "lease_expires_at",
                "attempt_count",
                "cycle_attempts",
                "last_attempt_at",
                "updated_at",
            ]
        )
        body = event_body(delivery.event)
        timestamp = int(time.time())
        headers = signing.headers_for(
            secrets_=endpoint_signing_secrets(endpoint, now=now),
            msg_id=delivery.event_id,
            timestamp=timestamp,
            body=body,
        )
        return Claim(
            delivery_id=delivery.id,
            token=token,
            url=endpoint.url,
            mode=endpoint.mode,
            headers=headers,
            body=body,
        )


def _record(claim: Claim, result: AttemptResult) -> Delivery:
    now = timezone.now()
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
        fields = ["last_status_code", "last_error", "updated_at"]
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error[:ERROR_MAX]
        if result.succeeded:
            # A success counts even if our lease was lost meanwhile (the other attempt is then a duplicate).
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.succeeded_at = delivery.succeeded_at or now
            delivery.next_attempt_at = None
            delivery.lease_token, delivery.lease_expires_at = "", None
            fields += ["status", "succeeded_at", "next_attempt_at", "lease_token", "lease_expires_at"]
        elif delivery.status == DeliveryStatus.SENDING and delivery.lease_token == claim.token:
            delivery.lease_token, delivery.lease_expires_at = "", None
            fields += ["status", "next_attempt_at", "lease_token", "lease_expires_at"]
            delays = settings.OUTBOUND_WEBHOOK_RETRY_DELAYS
            if result.status_code == 410:
                endpoint_disable_gone(endpoint_id=delivery.endpoint_id)
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
            elif delivery.cycle_attempts <= len(delays):
                delivery.status = DeliveryStatus.PENDING
                delay = retry_delay_seconds(delays[delivery.cycle_attempts - 1], result.retry_after_seconds)
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                _defer(delivery, schedule_at=delivery.next_attempt_at)
                fields.append("job_id")
            else:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
        else:
            # Our lease was taken over (we were presumed dead): keep the attempt, leave the state to the holder.
            fields = ["updated_at"]
        delivery.save(update_fields=fields)
    return delivery


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
    """One attempt of a delivery if it is due: claim (commit), POST (no transaction open), record (commit)."""
    claim = _claim(delivery_id)
    if claim is None:
        return None
    if connection.in_atomic_block:  # pragma: no cover - guarded by design
        raise RuntimeError("outbound HTTP must not run inside a transaction")
    try:
        result = http_send(url=claim.url, mode=claim.mode, headers=claim.headers, body=claim.body)
    except Exception as exc:  # noqa: BLE001 - record it as a failed attempt rather than leave the lease hanging
        logger.exception("webhook delivery attempt crashed", extra={"delivery": claim.delivery_id})
        result = AttemptResult(succeeded=False, error=f"internal error: {type(exc).__name__}")
    delivery = _record(claim, result)
    if result.succeeded:
        outcome = "succeeded"
    elif delivery.status == DeliveryStatus.PENDING:
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
    return delivery


# --- sweeper ----------------------------------------------------------------------------------------------


def _live_job_exists():
    from procrastinate.contrib.django.models import ProcrastinateJob

    heartbeat_floor = timezone.now() - timedelta(seconds=60)
    return Exists(
        ProcrastinateJob.objects.filter(id=OuterRef("job_id")).filter(
            Q(status="todo") | Q(status="doing", worker__last_heartbeat__gte=heartbeat_floor)
        )
    )


def deliveries_sweep(*, now=None) -> int:
    """Re-trigger deliveries the jobs lost: `sending` past its lease (worker died mid-request) and `pending`
    due for a while without a live job. Returns how many were re-deferred."""
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            stuck = list(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
                .order_by("lease_expires_at")[:SWEEP_BATCH]
            )
            for delivery in stuck:
                DeliveryAttempt.objects.create(
                    delivery=delivery,
                    attempted_at=delivery.last_attempt_at or now,
                    succeeded=False,
                    error="attempt interrupted (worker lost before recording the outcome); re-sending",
                )
                delivery.status = DeliveryStatus.PENDING
                delivery.next_attempt_at = now
                delivery.lease_token, delivery.lease_expires_at = "", None
                delivery.last_error = "attempt interrupted"
                delivery.updated_at = now
                _defer(delivery)
            Delivery.objects.bulk_update(
                stuck,
                [
                    "status",
                    "next_attempt_at",
                    "lease_token",
                    "lease_expires_at",
                    "last_error",
                    "job_id",
                    "updated_at",
                ],
            )
            orphaned = list(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now - timedelta(seconds=5))
                .filter(~_live_job_exists())
                .order_by("next_attempt_at")[:SWEEP_BATCH]
            )
            for delivery in orphaned:
                delivery.updated_at = now
                _defer(delivery)
            Delivery.objects.bulk_update(orphaned, ["job_id", "updated_at"])
        total += len(stuck) + len(orphaned)
        if len(stuck) < SWEEP_BATCH and len(orphaned) < SWEEP_BATCH:
            break
    if total:
        logger.warning("webhook sweeper re-deferred deliveries", extra={"count": total})
    metrics.set_webhook_queue_depth(
        Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]).count()
    )
    return total
