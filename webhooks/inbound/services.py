"""Inbound gateway webhooks (gateway -> PayTrust): receive, process, retry, sweep, replay.

Receive (the HTTP path, kept to a few queries): resolve the account from the URL (404), verify the signature/token
FIRST (401, nothing stored), parse (400), then in ONE transaction `INSERT … ON CONFLICT (account, gateway event id)
DO NOTHING RETURNING id` and, only if a row was inserted, defer the processing job. A duplicate delivery — also 20
copies at once — inserts nothing and queues nothing: the unique index decides.

Process (a worker): claim the row (status `processing` + lease, attempt logged, committed), then in one
transaction re-read it locked, re-parse the stored raw body and hand the notification to
`payments.services.payment_apply_gateway_status` (the same path as reconciliation), mark it `processed`.
For a gateway whose notifications are not authoritative (`Gateway.notifications_are_authoritative` False:
Midtrans signs only order_id/status_code/gross_amount), the notification is a trigger: before that transaction
the gateway's `get_status` is asked (HTTP, outside any transaction) and ITS status/amount/time are applied; a
failed status call fails the attempt, which is retried like any other failure.
A failure is logged on the attempt and retried after settings.INBOUND_WEBHOOK_RETRY_DELAYS (60, 300, 1800 s),
then the event is `failed`; a permanent error (the notification names no payment of this account, currency
mismatch) fails it at once. Failed events are replayed from the API, the admin or `manage.py replay_webhooks`.

The InboundNotification row is the source of truth; jobs are triggers. `inbound_events_sweep` (every minute) re-queues
events that are due without a job (a job lost with its worker, or never run) and reclaims `processing` rows whose
worker died (lease expired), counting that as a failed attempt. See docs/adr/0031-inbound-gateway-webhooks.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from gateways import base as gw
from gateways.models import GatewayAccount
from gateways.registry import gateway_for_account
from gateways.selectors import gateway_account_for_webhook
from payments.services import GatewayStatusUpdate, PaymentNotFoundForGateway, payment_apply_gateway_status
from paytrust.errors import ApplicationError, Conflict, NotFound, WebhookPayloadError
from paytrust.redaction import redact_headers
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt, InboundStatus

logger = logging.getLogger("paytrust.webhooks.inbound.services")

# A claimed event whose worker has not finished after this long is considered lost (the worker died):
# settings.INBOUND_WEBHOOK_LEASE_SECONDS. An event due for longer than settings.INBOUND_WEBHOOK_SWEEP_GRACE_SECONDS
# without being processed gets a new job from the sweeper.


def _processing_lease() -> timedelta:
    return timedelta(seconds=settings.INBOUND_WEBHOOK_LEASE_SECONDS)


def _sweep_grace() -> timedelta:
    return timedelta(seconds=settings.INBOUND_WEBHOOK_SWEEP_GRACE_SECONDS)


# Test hook: called with the event at the start of each processing attempt; raising makes the attempt fail.
# (Fault-injection tests set it; production never does.)
PROCESSING_FAULT_HOOK: Callable[[InboundNotification], None] | None = None


class PermanentProcessingError(Exception):
    """Retrying cannot help (the notification names no payment of this account, …): fail the event now."""

    def __init__(self, message: str, *, code: str = "processing_refused") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- receive -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveResult:
    event_id: str | None  # None for a duplicate (the stored event is the first delivery's)
    duplicate: bool
    account: GatewayAccount


def _insert_event(event: InboundNotification) -> str | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None when (account, event id) exists."""
    meta = InboundNotification._meta
    fields = [f for f in meta.concrete_fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(f.pre_save(event, add=True), connection) for f in fields]
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        "ON CONFLICT (gateway_account_id, gateway_event_id) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return row[0] if row else None


def _defer(event_ids: list[str], *, schedule_at: datetime | None = None) -> None:
    """Queue processing jobs on Django's connection: they commit or roll back with the caller's transaction."""
    from webhooks.inbound.tasks import defer_in_transaction, process_inbound_event

    defer_in_transaction(
        process_inbound_event, *({"event_id": pk} for pk in event_ids), schedule_at=schedule_at
    )


def inbound_webhook_receive(
    *, gateway: str, account_id: str, headers: Mapping[str, str], raw_body: bytes
) -> ReceiveResult:
    """Verify, store and queue one delivery. 404 unknown account (or gateway mismatch), 401 bad signature/token
    (nothing stored), 400 malformed payload. A duplicate returns `duplicate=True` and changes nothing."""
    account = gateway_account_for_webhook(gateway=gateway, account_id=account_id)
    adapter = gateway_for_account(account)
    adapter.verify_webhook(headers, raw_body)
    notification = adapter.parse_webhook(headers, raw_body)
    now = timezone.now()
    event = InboundNotification(
        gateway_account=account,
        merchant_id=account.merchant_id,
        mode=account.mode,
        gateway=account.gateway,
        gateway_event_id=notification.event_id[:160],
        payment_reference=(notification.payment_id or "")[:128],
        gateway_reference=(notification.gateway_reference or "")[:128],
        notification_status=str(notification.status),
        amount_minor=notification.amount_minor,
        currency=(notification.currency or "")[:3],
        occurred_at=notification.occurred_at,
        headers=redact_headers(headers),
        body=bytes(raw_body),
        status=InboundStatus.RECEIVED,
        next_attempt_at=now,
        deferred_at=now,
    )
    with transaction.atomic():
        inserted = _insert_event(event)
        if inserted is not None:
            _defer([inserted])
    return ReceiveResult(event_id=inserted, duplicate=inserted is None, account=account)


def sandbox_notification_receive(
    account: GatewayAccount, headers: dict[str, str], body: bytes
) -> ReceiveResult:
    """The sandbox checkout's notification (webhooks/inbound/sandbox_checkout.py), exactly like an HTTP delivery."""
    return inbound_webhook_receive(
        gateway=account.gateway, account_id=account.pk, headers=headers, raw_body=body
    )


# ---- process -------------------------------------------------------------------------------------------------


def _failure_code(status: gw.GatewayOutcome, raw: Mapping) -> str:
    if status not in (gw.GatewayOutcome.FAILED, gw.GatewayOutcome.EXPIRED):
        return ""
    if str(raw.get("fraud_status") or "").lower() == "deny":
        return "fraud_deny"
    for key in ("failure_code", "transaction_status", "action", "status"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            return value.lower()[:64]
    return ""


def _failure_message(raw: Mapping) -> str:
    for key in ("failure_message", "status_message", "channel_response_message"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            return value[:500]
    return ""


def _parse(adapter: gw.Gateway, event: InboundNotification) -> gw.WebhookNotification:
    try:
        return adapter.parse_webhook(event.headers, bytes(event.body))
    except WebhookPayloadError as exc:  # parsed fine at receipt: only an adapter change can get here
        raise PermanentProcessingError(f"stored body no longer parses: {exc.message}", code=exc.code)


def _gateway_truth(event_id: str) -> gw.GatewayOutcomeResult | None:
    """For a gateway whose notifications are not authoritative: the gateway's own status of the payment the stored
    notification names (`get_status`, HTTP: call it outside any transaction). None when the notification may be
    applied as is. A GatewayError propagates: the attempt fails and is retried."""
    event = InboundNotification.objects.select_related("gateway_account").get(pk=event_id)
    adapter = gateway_for_account(event.gateway_account)
    if adapter.notifications_are_authoritative:
        return None
    notification = _parse(adapter, event)
    return adapter.get_status(
        payment_id=notification.payment_id, gateway_reference=notification.gateway_reference or None
    )


def _update_from_notification(notification: gw.WebhookNotification) -> GatewayStatusUpdate:
    raw = notification.raw or {}
    return GatewayStatusUpdate(
        status=notification.status,
        amount_minor=notification.amount_minor,
        currency=notification.currency,
        occurred_at=notification.occurred_at,
        gateway_reference=notification.gateway_reference,
        failure_code=_failure_code(notification.status, raw),
        failure_message=_failure_message(raw),
    )


def _update_from_truth(
    notification: gw.WebhookNotification, truth: gw.GatewayOutcomeResult
) -> GatewayStatusUpdate:
    """The gateway's answer replaces everything the notification claimed (status, amount, currency, time)."""
    if truth.payment_id and truth.payment_id != notification.payment_id:
        raise PermanentProcessingError(
            f"the gateway's status answer is for {truth.payment_id!r}, not {notification.payment_id!r}",
            code="gateway_status_mismatch",
        )
    raw = truth.raw or {}
    return GatewayStatusUpdate(
        status=truth.status,
        amount_minor=truth.amount_minor,
        currency=truth.currency,
        occurred_at=truth.paid_at,  # None (= now) unless paid: the notification's times are unsigned
        gateway_reference=truth.gateway_reference or notification.gateway_reference,
        failure_code=_failure_code(truth.status, raw),
        failure_message=_failure_message(raw),
    )


def _apply(event: InboundNotification, truth: gw.GatewayOutcomeResult | None = None) -> str:
    """Apply a claimed, locked event to its payment (with `truth`, the gateway's status answer, when the gateway's
    notifications are not authoritative). Returns the outcome note."""
    adapter = gateway_for_account(event.gateway_account)
    notification = _parse(adapter, event)
    if truth is None and not adapter.notifications_are_authoritative:
        raise PermanentProcessingError(  # programming error: inbound_event_process always asks first
            "a non-authoritative notification cannot be applied without the gateway's status",
            code="gateway_status_required",
        )
    if truth is None:
        update = _update_from_notification(notification)
    else:
        update = _update_from_truth(notification, truth)
        if truth.status != notification.status:
            logger.warning(
                "inbound webhook: the gateway's status differs from the notification's",
                extra={"event": event.pk, "notified": str(notification.status), "gateway": str(truth.status)},
            )
    try:
        outcome = payment_apply_gateway_status(
            payment_id=notification.payment_id,
            gateway_account_id=event.gateway_account_id,
            update=update,
            source=f"webhook:{event.pk}",
        )
    except PaymentNotFoundForGateway as exc:
        raise PermanentProcessingError(exc.message, code=exc.code)
    except ApplicationError as exc:
        if exc.code in ("currency_mismatch", "amount_invalid", "payment_application_mismatch"):
            raise PermanentProcessingError(exc.message, code=exc.code)
        raise
    event.payment_id = outcome.payment.pk
    if truth is None:
        return outcome.note
    return f"{outcome.note} (gateway status {truth.status}; notification said {notification.status})"


@dataclass(frozen=True)
class _Claim:
    event_id: str
    attempt_id: int
    attempts: int


def _claim(event_id: str, now: datetime) -> _Claim | str:
    with transaction.atomic():
        event = InboundNotification.objects.select_for_update(skip_locked=True).filter(pk=event_id).first()
        if event is None:
            return "locked_or_missing"
        if event.status in (InboundStatus.PROCESSED, InboundStatus.FAILED):
            return f"already_{event.status}"
        if event.status == InboundStatus.RECEIVED and event.next_attempt_at and event.next_attempt_at > now:
            return "not_due"
        if event.status == InboundStatus.PROCESSING and event.lease_expires_at > now:
            return "in_progress"
        if event.status == InboundStatus.PROCESSING:  # the previous worker died mid-attempt: a failed attempt
            _close_attempt_interrupted(event, now)
            if not _schedule_retry_or_fail(event, now, "worker lost mid-processing (lease expired)"):
                return "failed"
            if event.next_attempt_at > now:
                return "rescheduled"
        number = (
            InboundNotificationAttempt.objects.filter(notification=event)
            .order_by("-number")
            .values_list("number", flat=True)
        ).first() or 0
        attempt = InboundNotificationAttempt.objects.create(
            notification=event, number=number + 1, started_at=now
        )
        event.status = InboundStatus.PROCESSING
        event.attempts += 1
        event.lease_expires_at = now + _processing_lease()
        event.save(update_fields=["status", "attempts", "lease_expires_at", "updated_at"])
    return _Claim(event_id=event.pk, attempt_id=attempt.pk, attempts=event.attempts)


def _close_attempt_interrupted(event: InboundNotification, now: datetime) -> None:
    InboundNotificationAttempt.objects.filter(notification=event, finished_at__isnull=True).update(
        finished_at=now, succeeded=False, error="interrupted: the worker stopped before finishing"
    )


def _schedule_retry_or_fail(
    event: InboundNotification, now: datetime, error: str, *, permanent: bool = False
) -> bool:
    """Under the event's lock: back to `received` with the next retry time (and its job), or `failed`.
    Returns True when a retry was scheduled."""
    delays = list(settings.INBOUND_WEBHOOK_RETRY_DELAYS)
    event.last_error = error[:1000]
    event.lease_expires_at = None
    if not permanent and event.attempts <= len(delays):
        event.status = InboundStatus.RECEIVED
        event.next_attempt_at = now + timedelta(seconds=delays[event.attempts - 1])
        event.deferred_at = now
        event.save(
            update_fields=[
                "status",
                "next_attempt_at",
                "deferred_at",
                "last_error",
                "lease_expires_at",
                "updated_at",
            ]
        )
        _defer([event.pk], schedule_at=event.next_attempt_at)
        return True
    event.status = InboundStatus.FAILED
    event.next_attempt_at = None
    event.save(update_fields=["status", "next_attempt_at", "last_error", "lease_expires_at", "updated_at"])
    logger.warning("inbound webhook failed", extra={"event": event.pk, "error": event.last_error})
    return False


def _record_failure(claim: _Claim, exc: BaseException, now: datetime) -> str:
    permanent = isinstance(exc, PermanentProcessingError)
    if isinstance(exc, ApplicationError | PermanentProcessingError):
        error = f"{exc.code}: {exc.message}"
    else:
        error = f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        event = InboundNotification.objects.select_for_update().get(pk=claim.event_id)
        InboundNotificationAttempt.objects.filter(pk=claim.attempt_id).update(
            finished_at=now, succeeded=False, error=error[:1000]
        )
        if event.status != InboundStatus.PROCESSING or event.attempts != claim.attempts:
            return "lost_claim"
        retried = _schedule_retry_or_fail(event, now, error, permanent=permanent)
    return "retry_scheduled" if retried else "failed"


def inbound_event_process(*, event_id: str) -> str:
    """Make one processing attempt of an event if it is due. Idempotent: a processed (or failed, or not yet due,
    or currently claimed) event is left alone. Never raises for a processing error (it is recorded). Returns
    what happened: "processed", "retry_scheduled", "failed", or why nothing was done."""
    claim = _claim(event_id, timezone.now())
    if not isinstance(claim, _Claim):
        return claim
    try:
        truth = _gateway_truth(claim.event_id)  # HTTP for non-authoritative gateways: before the transaction
        with transaction.atomic():
            event = (
                InboundNotification.objects.select_for_update(of=("self",))
                .select_related("gateway_account")
                .get(pk=claim.event_id)
            )
            if event.status != InboundStatus.PROCESSING or event.attempts != claim.attempts:
                return "lost_claim"
            if PROCESSING_FAULT_HOOK is not None:
                PROCESSING_FAULT_HOOK(event)
            note = _apply(event, truth)
            now = timezone.now()
            event.status = InboundStatus.PROCESSED
            event.processed_at = now
            event.lease_expires_at = None
            event.next_attempt_at = None
            event.last_error = ""
            event.outcome = note[:300]
            event.save(
                update_fields=[
                    "status",
                    "processed_at",
                    "lease_expires_at",
                    "next_attempt_at",
                    "last_error",
                    "outcome",
                    "payment",
                    "updated_at",
                ]
            )
            InboundNotificationAttempt.objects.filter(pk=claim.attempt_id).update(
                finished_at=now, succeeded=True
            )
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the attempt and retried or failed
        if not isinstance(exc, PermanentProcessingError | ApplicationError):
            logger.exception("inbound webhook processing failed", extra={"event": claim.event_id})
        return _record_failure(claim, exc, timezone.now())
    return "processed"


# ---- sweep ---------------------------------------------------------------------------------------------------


def inbound_events_sweep(*, now: datetime | None = None, batch: int = 500) -> int:
    """Re-queue events due for processing that have no live job: `received` and due for longer than the grace
    with no job queued within the grace, and `processing` whose lease expired (worker died). Returns the count."""
    now = now or timezone.now()
    cutoff = now - _sweep_grace()
    with transaction.atomic():
        events = list(
            InboundNotification.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=InboundStatus.RECEIVED, next_attempt_at__lte=cutoff)
                & (Q(deferred_at__isnull=True) | Q(deferred_at__lte=cutoff))
                | Q(status=InboundStatus.PROCESSING, lease_expires_at__lte=now)
            )
            .order_by("created_at")[:batch]
        )
        ids = [event.pk for event in events]
        if ids:
            InboundNotification.objects.filter(pk__in=ids, status=InboundStatus.RECEIVED).update(
                deferred_at=now
            )
            _defer(ids)
    if ids:
        logger.info("inbound webhooks re-queued by the sweeper", extra={"count": len(ids)})
    return len(ids)


# ---- replay --------------------------------------------------------------------------------------------------


def inbound_event_replay(*, event_id: str, merchant=None, mode: str | None = None) -> InboundNotification:
    """Queue an event for processing again (failed or processed: processing is idempotent, a processed event
    replays as a no-op on the payment). Scoped to `merchant`/`mode` when given (another tenant's event is a 404).
    409 `webhook_processing` while a worker holds it."""
    now = timezone.now()
    with transaction.atomic():
        qs = InboundNotification.objects.select_for_update(nowait=False).filter(pk=event_id)
        if merchant is not None:
            qs = qs.filter(merchant=merchant, mode=mode)
        event = qs.first()
        if event is None:
            raise NotFound(f"No such webhook event: {event_id!r}.", param="id")
        if (
            event.status == InboundStatus.PROCESSING
            and event.lease_expires_at
            and event.lease_expires_at > now
        ):
            raise Conflict(
                "The event is being processed right now; retry shortly.", code="webhook_processing"
            )
        event.status = InboundStatus.RECEIVED
        event.attempts = 0
        event.next_attempt_at = now
        event.deferred_at = now
        event.lease_expires_at = None
        event.save(
            update_fields=[
                "status",
                "attempts",
                "next_attempt_at",
                "deferred_at",
                "lease_expires_at",
                "updated_at",
            ]
        )
        _defer([event.pk])
    logger.info("inbound webhook replay queued", extra={"event": event.pk})
    return event
