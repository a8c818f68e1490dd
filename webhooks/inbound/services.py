"""Inbound gateway webhooks (gateway -> PayTrust): receive, process, retry, replay.

Receive (the HTTP path, kept to a few queries): resolve the account from the URL (404), verify the signature/token
FIRST (401, nothing stored), parse (400), then in ONE transaction `INSERT … ON CONFLICT (account, gateway event id)
DO NOTHING RETURNING id` and, only if a row was inserted, defer the processing job. A duplicate delivery — also 20
copies at once — inserts nothing and queues nothing: the unique index decides.

Process (the job `process_inbound_event`, one attempt per run): start the attempt (status `processing`, an
InboundNotificationAttempt row, committed), then in one transaction re-read the row locked, re-parse the stored
raw body and hand the notification to `payments.services.payment_apply_gateway_status` (the same path as
reconciliation), mark it `processed`. For a gateway whose notifications are not authoritative
(`Gateway.notifications_are_authoritative` False: Midtrans signs only order_id/status_code/gross_amount), the
notification is a trigger: before that transaction the gateway's `get_status` is asked (HTTP, outside any
transaction) and ITS status/amount/time are applied; a failed status call fails the attempt like any other error.
A failed attempt is recorded on its attempt row; the row goes back to `received` with `next_attempt_at` after
settings.INBOUND_WEBHOOK_RETRY_DELAYS (60, 300, 1800 s) and the job raises `RetryLater(next_attempt_at)`, so
procrastinate retries it then; after the last delay the row is `failed`. A permanent error (the notification names
no payment of this account, currency mismatch) fails it at once. Failed events are replayed from the API, the
admin or `manage.py replay_webhooks`.

No lease: the job's procrastinate lock is the row id, so two runs of one notification never overlap, and a run that
finds the row still `processing` knows the previous run's worker died (procrastinate's stalled-job retry,
paytrust/jobs.py, handed the job back): it closes that attempt as interrupted and makes the next one at once. An
interrupted attempt changed nothing, so it does not use up the retry schedule; after MAX_INTERRUPTED_ATTEMPTS in one
cycle the notification is `failed` (one that kills its worker every time cannot loop forever). Effects happen once
whatever runs: the processing transaction holds the row lock and checks the status and the attempt number.
See docs/adr/0031-inbound-gateway-webhooks.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from gateways import base as gw
from gateways.models import GatewayAccount
from gateways.registry import gateway_for_account
from gateways.selectors import gateway_account_for_webhook
from payments.services import GatewayStatusUpdate, PaymentNotFoundForGateway, payment_apply_gateway_status
from paytrust.errors import ApplicationError, Conflict, NotFound, WebhookPayloadError
from paytrust.jobs import RetryLater, defer_in_transaction, jobs_withdraw
from paytrust.redaction import redact_headers
from webhooks.inbound.gateway_steps import Prepared, prepare, verify_delivery
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt, InboundStatus

logger = logging.getLogger("paytrust.webhooks.inbound.services")

# The procrastinate task that processes one notification (webhooks/inbound/tasks.py); its lock is the row id.
PROCESS_TASK = "webhooks.process_inbound_event"
INTERRUPTED = "interrupted: the worker stopped before finishing"
# An interrupted attempt changed nothing (its transaction died with its worker), so it is retried at once and does
# not use up the retry schedule; but after this many in one cycle the notification is `failed` (one that kills its
# worker every time must not loop forever).
MAX_INTERRUPTED_ATTEMPTS = 10


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


def _defer(event_id: str, *, schedule_at: datetime | None = None) -> None:
    """Queue the processing job on Django's connection: it commits or rolls back with the caller's transaction."""
    defer_in_transaction(PROCESS_TASK, {"event_id": event_id}, schedule_at=schedule_at, locks=[event_id])


def inbound_webhook_receive(
    *, gateway: str, account_id: str, headers: Mapping[str, str], raw_body: bytes
) -> ReceiveResult:
    """Verify, store and queue one delivery. 404 unknown account (or gateway mismatch), 401 bad signature/token
    (nothing stored), 400 malformed payload. A duplicate returns `duplicate=True` and changes nothing."""
    account = gateway_account_for_webhook(gateway=gateway, account_id=account_id)
    adapter = gateway_for_account(account)
    verify_delivery(adapter, headers, raw_body)
    notification = adapter.parse_webhook(headers, raw_body)
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
        next_attempt_at=timezone.now(),
    )
    with transaction.atomic():
        inserted = _insert_event(event)
        if inserted is not None:
            _defer(inserted)
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


def _prepare(event_id: str) -> Prepared:
    """The HTTP steps before the processing transaction (webhooks/inbound/gateway_steps.py)."""
    event = InboundNotification.objects.select_related("gateway_account").get(pk=event_id)
    adapter = gateway_for_account(event.gateway_account)
    try:
        return prepare(adapter, event_pk=event.pk, notification=_parse(adapter, event))
    except PaymentNotFoundForGateway as exc:
        raise PermanentProcessingError(exc.message, code=exc.code)


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
        refund=notification.refund,
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
        refund=truth.refund,
        capture_before=truth.capture_before,
    )


def _apply(event: InboundNotification, prepared: Prepared | None = None) -> str:
    """Apply a claimed, locked event to its payment (`prepared`: what `_prepare` learned over HTTP: the resolved
    notification, the gateway's status answer when its notifications are not authoritative). Returns the note."""
    adapter = gateway_for_account(event.gateway_account)
    notification = prepared.notification if prepared is not None else _parse(adapter, event)
    truth = prepared.truth if prepared is not None else None
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
        if (
            exc.code
            in (
                "currency_mismatch",
                "amount_invalid",
                "payment_application_mismatch",
                "refund_exceeds_received",  # the gateway reports more refunded than we received: retrying cannot help
            )
        ):
            raise PermanentProcessingError(exc.message, code=exc.code)
        raise
    event.payment_id = outcome.payment.pk
    note = outcome.note
    if prepared is not None and prepared.completion:
        note = f"{prepared.completion}; {note}"
    if truth is None:
        return note
    return f"{note} (gateway status {truth.status}; notification said {notification.status})"


@dataclass(frozen=True)
class _Attempt:
    event_id: str
    attempt_id: int
    number: int  # the event's `attempts` when this attempt started: later writes check it is still current
    log_number: int  # its InboundNotificationAttempt.number


def _cycle_attempts(event: InboundNotification, last_number: int):
    """The attempt rows of the current cycle (since the last replay): the event's last `attempts` ones."""
    return InboundNotificationAttempt.objects.filter(
        notification=event, number__gt=last_number - event.attempts, number__lte=last_number
    )


def _close_open_attempts(event: InboundNotification, now: datetime) -> int:
    """An attempt never finished (its worker died): close it as interrupted. Returns how many were closed."""
    return InboundNotificationAttempt.objects.filter(notification=event, finished_at__isnull=True).update(
        finished_at=now, succeeded=False, error=INTERRUPTED
    )


def _fail(event: InboundNotification, error: str) -> None:
    """Under the event's lock: no more attempts."""
    event.status = InboundStatus.FAILED
    event.next_attempt_at = None
    event.last_error = error[:1000]
    event.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
    logger.warning("inbound webhook failed", extra={"event": event.pk, "error": event.last_error})


def _attempt_start(event_id: str, now: datetime) -> _Attempt | RetryLater | str:
    """Open an attempt (committed before any work, so a kill leaves it open); or say why there is none."""
    with transaction.atomic():
        event = InboundNotification.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            return "missing"
        if event.status in (InboundStatus.PROCESSED, InboundStatus.FAILED):
            return f"already_{event.status}"
        if event.status == InboundStatus.RECEIVED and event.next_attempt_at and event.next_attempt_at > now:
            return RetryLater(event.next_attempt_at, "not due yet")
        number = (
            InboundNotificationAttempt.objects.filter(notification=event)
            .order_by("-number")
            .values_list("number", flat=True)
        ).first() or 0
        if event.status == InboundStatus.PROCESSING:  # the previous run's worker died mid-attempt
            _close_open_attempts(event, now)
            interrupted = _cycle_attempts(event, number).filter(error=INTERRUPTED).count()
            if interrupted >= MAX_INTERRUPTED_ATTEMPTS:
                _fail(event, f"{INTERRUPTED} ({interrupted} times)")
                return "failed"
        attempt = InboundNotificationAttempt.objects.create(
            notification=event, number=number + 1, started_at=now
        )
        event.status = InboundStatus.PROCESSING
        event.attempts += 1
        event.save(update_fields=["status", "attempts", "updated_at"])
    return _Attempt(
        event_id=event.pk, attempt_id=attempt.pk, number=event.attempts, log_number=attempt.number
    )


def _attempt_failed(attempt: _Attempt, exc: BaseException, now: datetime) -> RetryLater | str:
    """Record the failed attempt; under the row lock: back to `received` with the next retry time, or `failed`."""
    if isinstance(exc, ApplicationError | PermanentProcessingError):
        error = f"{exc.code}: {exc.message}"
    else:
        error = f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        event = InboundNotification.objects.select_for_update().get(pk=attempt.event_id)
        InboundNotificationAttempt.objects.filter(pk=attempt.attempt_id).update(
            finished_at=now, succeeded=False, error=error[:1000]
        )
        if event.status != InboundStatus.PROCESSING or event.attempts != attempt.number:
            return "superseded"
        delays = list(settings.INBOUND_WEBHOOK_RETRY_DELAYS)
        failures = (  # this cycle's failed attempts, this one included; interrupted ones do not count
            _cycle_attempts(event, attempt.log_number)
            .filter(succeeded=False)
            .exclude(error=INTERRUPTED)
            .count()
        )
        if isinstance(exc, PermanentProcessingError) or failures > len(delays):
            _fail(event, error)
            return "failed"
        event.status = InboundStatus.RECEIVED
        event.next_attempt_at = now + timedelta(seconds=delays[failures - 1])
        event.last_error = error[:1000]
        event.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
    return RetryLater(event.next_attempt_at, error)


def _attempt_succeeded(attempt: _Attempt, prepared: Prepared) -> str:
    """The processing transaction: apply the notification under the row lock, mark the event processed."""
    with transaction.atomic():
        event = (
            InboundNotification.objects.select_for_update(of=("self",))
            .select_related("gateway_account")
            .get(pk=attempt.event_id)
        )
        if event.status != InboundStatus.PROCESSING or event.attempts != attempt.number:
            return "superseded"  # a later run took over (this one was presumed dead): leave it the row
        note = _apply(event, prepared)
        now = timezone.now()
        event.status = InboundStatus.PROCESSED
        event.processed_at = now
        event.next_attempt_at = None
        event.last_error = ""
        event.outcome = note[:300]
        event.save(
            update_fields=[
                "status",
                "processed_at",
                "next_attempt_at",
                "last_error",
                "outcome",
                "payment",
                "updated_at",
            ]
        )
        InboundNotificationAttempt.objects.filter(pk=attempt.attempt_id).update(
            finished_at=now, succeeded=True
        )
    return "processed"


def inbound_event_process(*, event_id: str) -> str:
    """Make one processing attempt of an event if it is due. Idempotent: a processed or failed event is left
    alone. A processing error is recorded, never raised: when a retry is due later (or the event is not due yet)
    this raises `RetryLater(at)` — the job runner retries the job then. Returns "processed", "failed", or why
    nothing was done ("already_processed", "already_failed", "superseded", "missing")."""
    attempt = _attempt_start(event_id, timezone.now())
    if isinstance(attempt, RetryLater):
        raise attempt
    if isinstance(attempt, str):
        return attempt
    try:
        prepared = _prepare(attempt.event_id)  # HTTP (resolve, status, completion): before the transaction
        return _attempt_succeeded(attempt, prepared)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the attempt and retried or failed
        if not isinstance(exc, PermanentProcessingError | ApplicationError):
            logger.exception("inbound webhook processing failed", extra={"event": attempt.event_id})
        result = _attempt_failed(attempt, exc, timezone.now())
    if isinstance(result, RetryLater):
        raise result
    return result


# ---- replay --------------------------------------------------------------------------------------------------


def inbound_event_replay(
    *, event_id: str, merchant=None, mode: str | None = None, defer: bool = True
) -> InboundNotification:
    """Queue an event for processing again (failed or processed: processing is idempotent, a processed event
    replays as a no-op on the payment), with a fresh retry budget. Scoped to `mode` and to `merchant` when given
    (another tenant's or another mode's event is a 404; the API always gives the key's mode). 409 `webhook_processing` while its job is running (or its worker died and
    the job has not been handed back yet). A waiting job of the event is replaced by a new one due now.
    `defer=False` queues nothing: the caller processes it itself (`replay_webhooks --sync`)."""
    now = timezone.now()
    with transaction.atomic():
        qs = InboundNotification.objects.select_for_update().filter(pk=event_id)
        if mode is not None:
            qs = qs.filter(mode=mode)
        if merchant is not None:
            qs = qs.filter(merchant=merchant)
        event = qs.first()
        if event is None:
            raise NotFound(f"No such webhook event: {event_id!r}.", param="id")
        if jobs_withdraw([event.pk]):
            raise Conflict(
                "The event is being processed right now; retry shortly.", code="webhook_processing"
            )
        _close_open_attempts(event, now)  # `processing` without a running job: that attempt was interrupted
        event.status = InboundStatus.RECEIVED
        event.attempts = 0
        event.next_attempt_at = now
        event.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        if defer:
            _defer(event.pk)
    logger.info("inbound webhook replay queued", extra={"event": event.pk})
    return event


def inbound_event_defer(*, event_id: str, at: datetime | None = None) -> None:
    """Queue the processing job of an event (at `at`), replacing a waiting one; nothing while one is running.
    For `replay_webhooks --sync`, whose attempt in the command asked for a retry."""
    with transaction.atomic():
        if not jobs_withdraw([event_id]):
            _defer(event_id, schedule_at=at)
