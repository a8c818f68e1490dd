"""Reads of inbound gateway webhook events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db.models import Prefetch, QuerySet

from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt, InboundStatus


def _rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _attempts(event: InboundNotification) -> list[InboundNotificationAttempt]:
    cache = getattr(event, "_prefetched_objects_cache", {})
    if "attempt_log" in cache:
        return list(event.attempt_log.all())
    return list(InboundNotificationAttempt.objects.filter(notification=event).order_by("number"))


def inbound_event_representation(event: InboundNotification) -> dict:
    return {
        "id": event.id,
        "object": "inbound_webhook_event",
        "mode": event.mode,
        "merchant": event.merchant_id,
        "gateway": event.gateway,
        "gateway_account": event.gateway_account_id,
        "gateway_event_id": event.gateway_event_id,
        "payment": event.payment_id,
        "payment_reference": event.payment_reference or None,
        "notification_status": event.notification_status,
        "status": event.status,
        "attempts": event.attempts,
        "next_attempt_at": _rfc3339(event.next_attempt_at),
        "last_error": event.last_error or None,
        "outcome": event.outcome or None,
        "processed_at": _rfc3339(event.processed_at),
        "attempt_log": [
            {
                "number": attempt.number,
                "started_at": _rfc3339(attempt.started_at),
                "finished_at": _rfc3339(attempt.finished_at),
                "succeeded": attempt.succeeded,
                "error": attempt.error or None,
            }
            for attempt in _attempts(event)
        ],
        "created_at": _rfc3339(event.created_at),
        "updated_at": _rfc3339(event.updated_at),
    }


def inbound_events_render(events: Iterable[InboundNotification]) -> list[dict]:
    return [inbound_event_representation(event) for event in events]


def inbound_events_failed(*, merchant=None, mode: str | None = None, gateway: str | None = None) -> QuerySet:
    """Failed events, newest first, of `mode` (every mode only for operator tools, mode=None) and of `merchant`
    (all merchants when None: an admin key, which still sees its own mode only)."""
    qs = InboundNotification.objects.filter(status=InboundStatus.FAILED).defer("body", "headers")
    if mode is not None:
        qs = qs.filter(mode=mode)
    if merchant is not None:
        qs = qs.filter(merchant=merchant)
    if gateway:
        qs = qs.filter(gateway=gateway)
    return qs.prefetch_related(
        Prefetch("attempt_log", queryset=InboundNotificationAttempt.objects.order_by("number"))
    )
